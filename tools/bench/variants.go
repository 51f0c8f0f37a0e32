package main

import (
	"fmt"
	"strings"
	"time"
)

// An apex variant is the apex target with a different configuration,
// benchmarked as a target of its own: it is named in -targets (or in a
// scenario's Targets) beside direct and apex, so that it runs in the same
// session, under the same load and the same accounting, and its rows sit
// next to apex's in the tables. Each variant registers itself from an init
// function in the file of the scenario or question it serves:
//
//	func init() {
//		registerApexVariant(apexVariant{
//			Name: "apex-admin", Description: "apex with [admin] and /metrics scraped every 1s",
//			Admin: true, Scrape: time.Second,
//		})
//	}
//
// Every flag that shapes the apex target (-apex-owner, -apex-backend,
// -apex-bin, the layout) applies to its variants too.
type apexVariant struct {
	Name        string // target name; must not clash with allTargets
	Description string // one line, for results.md and -h

	// Conns replaces -apex-conns (the [[backend]]'s conns, upstream
	// connections per server and loop) when > 0; zero keeps -apex-conns.
	Conns int

	// Backend is more [[backend]] lines, written after those of
	// -apex-backend (a key set by both makes apex refuse the config, and
	// the variant is reported as not started). Empty adds nothing.
	Backend string

	// Servers is how many evio backend servers the [[backend]] lists: 0
	// or 1 is the bench's one backend (the one direct measures), 2 adds a
	// second evio process on its own port, started once per bench and
	// placed like the first (on the load CPUs in the pinned layout).
	Servers int

	// Admin adds an [admin] listener on a free loopback port. The plain
	// apex target has none (only -profile adds one, for pprof).
	Admin bool

	// Scrape, when > 0, makes a goroutine of the bench GET /metrics from
	// the admin listener this often during every measured run (not during
	// warm-ups), as a Prometheus server would; it needs Admin. Zero
	// scrapes nothing.
	Scrape time.Duration

	// Tuned marks apex in another configuration that stands beside apex
	// as an equal, not as a variation to weigh against it: it and apex
	// are each ranked against the other proxies only (×peer), never
	// against each other.
	Tuned bool

	// Base runs the binary given by -apex-base-bin instead of the apex
	// under test, with the same configuration: an A/B of two builds in
	// one interleaved run.
	Base bool
}

// apexVariants is the registry, filled by init functions; variantOrder
// keeps registration order for -h, colours and default target lists.
var (
	apexVariants = map[string]apexVariant{}
	variantOrder []string
)

func registerApexVariant(v apexVariant) {
	if v.Name == "" || !strings.HasPrefix(v.Name, tApex+"-") || strings.ContainsAny(v.Name, ", /") {
		panic("registerApexVariant: a variant's name is apex-SOMETHING, without commas, spaces or slashes: " + v.Name)
	}
	if v.Scrape > 0 && !v.Admin {
		panic("registerApexVariant: " + v.Name + " scrapes /metrics without an [admin] listener")
	}
	if v.Servers < 0 || v.Servers > 2 {
		panic("registerApexVariant: " + v.Name + ": the bench starts at most 2 backend servers")
	}
	if _, dup := apexVariants[v.Name]; dup {
		panic("registerApexVariant: duplicate variant " + v.Name)
	}
	apexVariants[v.Name] = v
	variantOrder = append(variantOrder, v.Name)
}

// isTuned reports whether a target is a Tuned apex variant.
func isTuned(name string) bool { return apexVariants[name].Tuned }

// isApex reports whether a target runs apex: the apex target or a variant.
func isApex(name string) bool {
	_, ok := apexVariants[name]
	return ok || name == tApex
}

// knownTargets is every target -targets accepts: the four of allTargets,
// then the variants in registration order.
func knownTargets() []string {
	return append(append(append([]string(nil), allTargets...), tFloor, tFloorPipe, tFloorURing, tOrigin), variantOrder...)
}

// backendServers is how many evio backends the targets need (at least 1).
func backendServers(targets []string) int {
	n := 1
	for _, t := range targets {
		if v, ok := apexVariants[t]; ok {
			n = max(n, v.Servers)
		}
	}
	return n
}

// describeVariants maps each selected variant to its description, for
// results.json (config.apex_variants) and results.md; nil when none is
// selected.
func describeVariants(targets []string) map[string]string {
	out := map[string]string{}
	for _, t := range targets {
		if v, ok := apexVariants[t]; ok {
			out[t] = v.Description
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// apexConf is everything the bench varies in apex's config file.
type apexConf struct {
	listen  string   // [server] listen
	admin   string   // [admin] listen; "" = no admin endpoint
	servers []string // the [[backend]]'s servers, at least one
	pinned  bool     // loops = 1 (pinned layout); else apex's default (GOMAXPROCS)
	conns   int      // [[backend]] conns
	owner   string   // [[backend]] owner; "" = apex's default
	extra   string   // more [[backend]] lines; "" = none
}

// apexTargetConf resolves the config of the apex target or one of its
// variants (name) from the bench's environment; listen and admin are the
// ports picked for it (admin is dropped unless the target wants one).
func apexTargetConf(name string, env targetEnv, listen, admin string) (apexConf, error) {
	c := apexConf{
		listen: listen, servers: []string{env.backendAddr}, pinned: env.pinned,
		conns: env.apexConns, owner: env.apexOwner, extra: env.apexExtra,
	}
	if env.apexAdmin {
		c.admin = admin
	}
	if name == tApex {
		return c, nil
	}
	v, ok := apexVariants[name]
	if !ok {
		return c, fmt.Errorf("unknown apex variant %q", name)
	}
	if v.Conns > 0 {
		c.conns = v.Conns
	}
	if v.Backend != "" {
		c.extra = strings.TrimSpace(c.extra + "\n" + v.Backend)
	}
	if v.Admin {
		c.admin = admin
	}
	if v.Servers > 1 {
		if len(env.extraBackends) < v.Servers-1 {
			return c, fmt.Errorf("%s needs %d backend servers, the bench started %d", name, v.Servers, 1+len(env.extraBackends))
		}
		c.servers = append(c.servers, env.extraBackends[:v.Servers-1]...)
	}
	return c, nil
}

func init() {
	registerApexVariant(apexVariant{
		Name:        "apex-base",
		Description: "apex built from another commit (-apex-base-bin), same configuration: an A/B of two builds",
		Base:        true,
	})
}

// The tuned settings that the performance targets are checked with, as
// targets of their own, so that Apex's default and tuned configurations
// run in one interleaved session beside direct, nginx and HAProxy.
func init() {
	for _, depth := range []int{8, 16} {
		registerApexVariant(apexVariant{
			Name:        fmt.Sprintf("apex-pipe%d", depth),
			Description: fmt.Sprintf("apex with pipeline = %d: up to %d idempotent requests in flight on one upstream connection", depth, depth),
			Backend:     fmt.Sprintf("pipeline = %d", depth),
			Tuned:       true,
		})
	}
	// Apex's own default conns (the bench gives apex 64): a busy
	// connection's pipeline takes the requests beyond 16 (ADR 0005).
	registerApexVariant(apexVariant{
		Name:        "apex-pipe8-c16",
		Description: "apex with pipeline = 8 and conns = 16 (Apex's default conns, not the bench's 64)",
		Backend:     "pipeline = 8",
		Conns:       16,
		Tuned:       true,
	})
}
