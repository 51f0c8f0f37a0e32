package main

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Charts (each written as .svg and .png):
//   rps-<body>.*  requests/s by connection count (x) and target (bars),
//                 with min–max whiskers over the repeats;
//   cpu.*         proxy CPU µs per request by point (x) and proxy (bars).

// targetColor keeps a target's colour the same in every chart: the soft
// palette for the four targets, the dark one for apex variants in
// registration order.
func targetColor(name string) color.Color {
	for i, t := range allTargets {
		if t == name {
			return plotutil.Color(i)
		}
	}
	for i, t := range variantOrder {
		if t == name {
			return plotutil.DarkColors[i%len(plotutil.DarkColors)]
		}
	}
	return color.Gray{Y: 128}
}

// whiskers draws min–max ranges at the same offsets as a BarChart.
type whiskers struct {
	lo, hi []float64 // NaN = no whisker at that index
	offset vg.Length
	style  draw.LineStyle
	cap    vg.Length
}

func (w *whiskers) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, trY := plt.Transforms(&c)
	for i := range w.lo {
		if math.IsNaN(w.lo[i]) || math.IsNaN(w.hi[i]) {
			continue
		}
		x := trX(float64(i)) + w.offset
		y0, y1 := trY(w.lo[i]), trY(w.hi[i])
		c.StrokeLine2(w.style, x, y0, x, y1)
		c.StrokeLine2(w.style, x-w.cap/2, y0, x+w.cap/2, y0)
		c.StrokeLine2(w.style, x-w.cap/2, y1, x+w.cap/2, y1)
	}
}

func (w *whiskers) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = 0, float64(len(w.lo)-1)
	ymin, ymax = math.Inf(1), math.Inf(-1)
	for i := range w.lo {
		if !math.IsNaN(w.lo[i]) {
			ymin = math.Min(ymin, w.lo[i])
		}
		if !math.IsNaN(w.hi[i]) {
			ymax = math.Max(ymax, w.hi[i])
		}
	}
	if math.IsInf(ymin, 1) {
		ymin, ymax = 0, 0
	}
	return
}

// cleanTicks labels the default ticks without trailing zeros ("75,000"
// rather than "75000.00"); thousands separators when integral is set.
type cleanTicks struct{ integral bool }

func (c cleanTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label == "" {
			continue
		}
		if c.integral {
			ts[i].Label = groupThousands(int64(math.Round(ts[i].Value)))
		} else {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', -1, 64)
		}
	}
	return ts
}

// series is one target's bars in a grouped chart.
type series struct {
	target string
	vals   []float64 // per category; 0 = absent
	lo, hi []float64 // whisker range per category; NaN = none
}

// groupedBars draws one bar per series in each category.
func groupedBars(title, ylabel string, cats []string, ss []series, integral bool) (*plot.Plot, error) {
	p := plot.New()
	p.Y.Tick.Marker = cleanTicks{integral: integral}
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	n := len(ss)
	if n == 0 {
		return p, nil
	}
	groupW := vg.Points(360 / float64(len(cats)))
	if groupW > vg.Points(150) {
		groupW = vg.Points(150)
	}
	w := groupW / vg.Length(n)
	top := 0.0
	for _, s := range ss {
		for i, v := range s.vals {
			top = math.Max(top, v)
			if s.hi != nil && !math.IsNaN(s.hi[i]) {
				top = math.Max(top, s.hi[i])
			}
		}
	}
	if top > 0 {
		p.Y.Max = top * 1.25 // headroom for the legend
	}
	for i, s := range ss {
		bars, err := plotter.NewBarChart(plotter.Values(s.vals), w)
		if err != nil {
			return nil, err
		}
		bars.Color = targetColor(s.target)
		bars.LineStyle.Width = vg.Length(0)
		bars.Offset = w * (vg.Length(i) - vg.Length(n-1)/2)
		p.Add(bars)
		p.Legend.Add(s.target, bars)
		if s.lo != nil {
			p.Add(&whiskers{lo: s.lo, hi: s.hi, offset: bars.Offset, cap: w / 3,
				style: draw.LineStyle{Color: color.Black, Width: vg.Points(0.8)}})
		}
	}
	p.NominalX(cats...)
	return p, nil
}

func savePlot(p *plot.Plot, dir, base string) error {
	for _, ext := range []string{".svg", ".png"} {
		if err := p.Save(18*vg.Centimeter, 10*vg.Centimeter, filepath.Join(dir, base+ext)); err != nil {
			return err
		}
	}
	return nil
}

// chartTargets returns the targets present in results, in knownTargets
// order then any others.
func chartTargets(results []pointResult) []string {
	seen := map[string]bool{}
	for _, r := range results {
		seen[r.Target] = true
	}
	var out []string
	for _, t := range knownTargets() {
		if seen[t] {
			out = append(out, t)
			delete(seen, t)
		}
	}
	var rest []string
	for t := range seen {
		rest = append(rest, t)
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func nanSlice(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = math.NaN()
	}
	return s
}

func writeCharts(dir string, r *report) error {
	targets := chartTargets(r.Results)
	// requests/s, one chart per body
	for _, bo := range bodyOrder(r.Results) {
		var conns []int
		seen := map[int]bool{}
		for _, pr := range r.Results {
			if pr.Body == bo.Body && pr.Path == bo.Path && !seen[pr.Conns] {
				seen[pr.Conns] = true
				conns = append(conns, pr.Conns)
			}
		}
		sort.Ints(conns)
		cats := make([]string, len(conns))
		for i, c := range conns {
			cats[i] = fmt.Sprintf("%d conns", c)
		}
		var ss []series
		for _, t := range targets {
			s := series{target: t, vals: make([]float64, len(conns)), lo: nanSlice(len(conns)), hi: nanSlice(len(conns))}
			any := false
			for _, pr := range r.Results {
				if pr.Target != t || pr.Body != bo.Body || pr.Path != bo.Path || pr.RPS <= 0 {
					continue
				}
				i := sort.SearchInts(conns, pr.Conns)
				s.vals[i], s.lo[i], s.hi[i] = pr.RPS, pr.RPSMin, pr.RPSMax
				any = true
			}
			if any {
				ss = append(ss, s)
			}
		}
		if len(ss) == 0 {
			continue
		}
		title := fmt.Sprintf("requests/s, %s body (median, min–max), %s layout", bodyLabel(bo.BodyBytes), r.Config.Layout)
		p, err := groupedBars(title, "requests/s", cats, ss, true)
		if err != nil {
			return err
		}
		if err := savePlot(p, dir, "rps-"+slug(bo.Body)); err != nil {
			return err
		}
	}

	// CPU µs per request: categories are every point that has proxy CPU data.
	type key struct {
		body, path string
		conns      int
	}
	var keys []key
	seenK := map[key]bool{}
	for _, pr := range r.Results {
		k := key{pr.Body, pr.Path, pr.Conns}
		if pr.CPUUsPerReq != nil && !seenK[k] {
			seenK[k] = true
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	cats := make([]string, len(keys))
	for i, k := range keys {
		cats[i] = fmt.Sprintf("%s c%d", k.body, k.conns)
	}
	var ss []series
	for _, t := range targets {
		if !isProxy(t) {
			continue
		}
		s := series{target: t, vals: make([]float64, len(keys)), lo: nanSlice(len(keys)), hi: nanSlice(len(keys))}
		any := false
		for _, pr := range r.Results {
			if pr.Target != t || pr.CPUUsPerReq == nil {
				continue
			}
			for i, k := range keys {
				if k == (key{pr.Body, pr.Path, pr.Conns}) {
					s.vals[i] = *pr.CPUUsPerReq
					if pr.CPUUsPerReqMin != nil && pr.CPUUsPerReqMax != nil {
						s.lo[i], s.hi[i] = *pr.CPUUsPerReqMin, *pr.CPUUsPerReqMax
					}
					any = true
				}
			}
		}
		if any {
			ss = append(ss, s)
		}
	}
	p, err := groupedBars(fmt.Sprintf("proxy CPU µs per request (lower is better), %s layout", r.Config.Layout),
		"CPU µs / request", cats, ss, false)
	if err != nil {
		return err
	}
	return savePlot(p, dir, "cpu")
}

// slug makes a body name safe for a file name.
func slug(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '-'
	}, s)
	if s == "" {
		return "body"
	}
	return s
}
