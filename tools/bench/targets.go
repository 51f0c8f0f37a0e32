package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Target names, in the order they run by default.
const (
	tDirect  = "direct"
	tApex    = "apex"
	tNginx   = "nginx"
	tHAProxy = "haproxy"
	// tFloor is the blind forwarder of floor.go: not a proxy to compare
	// with, but the cost below which no non-batching proxy can go.
	tFloor = "floor"
	// tOrigin is the responder of floor.go in the proxy's place, with no
	// upstream: the cost of the client side alone, below which no proxy
	// can go however well it batches upstream.
	tOrigin = "origin"
	// tFloorPipe is the forwarder of floorpipe.go: the floor with Apex's
	// upstream batching and nothing else, the cost below which a proxy
	// that batches as Apex does cannot go.
	tFloorPipe = "floor-pipe"
	// tFloorURing is the forwarder of flooruring.go: the floor-pipe on
	// io_uring, one system call per loop turn.
	tFloorURing = "floor-uring"
)

var allTargets = []string{tDirect, tApex, tNginx, tHAProxy}

// isPeer reports whether a target is a proxy to rank against the others
// (the floors and the origin are measured beside them, not ranked among
// them).
func isPeer(name string) bool {
	return isProxy(name) && name != tFloor && name != tFloorPipe && name != tFloorURing && name != tOrigin
}

func isProxy(name string) bool { return name != tDirect }

// targetEnv is what every target needs to know to start.
type targetEnv struct {
	tmp         string // per-run temp dir; each target gets a subdir
	backendAddr string // host:port of the evio backend
	// extraBackends are more evio backends (host:port), for apex
	// variants with Servers > 1; nil when no selected target needs them.
	extraBackends []string
	pinned        bool
	proxyCPUs     string // taskset list for the proxy ("" = not pinned)
	apexBin       string // built or given apex binary
	apexBaseBin   string // -apex-base-bin, for the apex-base variant
	apexConns     int    // [[backend]] conns
	apexOwner     string // [[backend]] owner, "" = apex's default
	apexExtra     string // more [[backend]] lines
	apexAdmin     bool   // give the apex target an [admin] listener (-profile's pprof)
	upstreamKA    int    // nginx upstream keepalive idle pool size
	startWait     time.Duration
}

// target is a started target. proc is nil for direct.
type target struct {
	name      string
	addr      string // what wrk connects to
	adminAddr string // apex admin listener (pprof, /metrics), "" when it has none
	binary    string // the proxy's executable (for pprof symbolization)
	proc      *proc
	config    string // generated config file
	// scrape > 0: GET http://adminAddr/metrics this often during each
	// measured run (apex variants with Scrape, see target_admin.go).
	scrape time.Duration
	// servers is how many evio backends the target sends to: 2 for the
	// two-server apex variants, else 1.
	servers int
}

func (t *target) url(path string) string { return "http://" + t.addr + path }

func (t *target) stop() {
	if t != nil && t.proc != nil {
		t.proc.stop(5 * time.Second)
	}
}

// lookTarget reports whether a target can run on this machine, and if not,
// why (the note printed when it is skipped).
func lookTarget(name string) (ok bool, note string) {
	if isApex(name) {
		return true, ""
	}
	switch name {
	case tDirect, tFloor, tFloorPipe, tFloorURing, tOrigin:
		return true, ""
	case tNginx, tHAProxy:
		if _, err := exec.LookPath(name); err != nil {
			return false, fmt.Sprintf("%s is not installed (tools/bench/setup.sh installs it); skipped", name)
		}
		return true, ""
	}
	return false, fmt.Sprintf("unknown target %q", name)
}

// toolVersion returns the first line of `name args...` (stdout or stderr),
// or "" if it cannot be run.
func toolVersion(name string, args ...string) string {
	if _, err := exec.LookPath(name); err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, _ := groupCommand(ctx, name, args...).CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// buildApex builds ./cmd/apex-epoll of the checkout at root into dir.
func buildApex(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "apex-epoll")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := groupCommand(ctx, "go", "build", "-o", bin, "./cmd/apex-epoll")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		first, _, _ := strings.Cut(msg, "\n")
		return "", fmt.Errorf("go build ./cmd/apex-epoll failed (%v): %s\n%s", err, first, tailLines(msg, 20))
	}
	return bin, nil
}

// startTarget starts one target and waits until it accepts connections.
func startTarget(name string, env targetEnv) (*target, error) {
	if name == tDirect {
		return &target{name: tDirect, addr: env.backendAddr, servers: 1}, nil
	}
	dir := filepath.Join(env.tmp, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// nginx workers run as an unprivileged user when the master is root;
	// they must be able to reach their temp paths.
	_ = os.Chmod(env.tmp, 0o755)
	_ = os.Chmod(dir, 0o755)
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	t := &target{name: name, addr: fmt.Sprintf("127.0.0.1:%d", port), servers: 1}
	logPath := filepath.Join(dir, name+".log")
	var argv []string
	switch {
	case isApex(name):
		aport, err := freePort()
		if err != nil {
			return nil, err
		}
		c, err := apexTargetConf(name, env, t.addr, fmt.Sprintf("127.0.0.1:%d", aport))
		if err != nil {
			return nil, err
		}
		t.adminAddr, t.servers = c.admin, len(c.servers)
		if v, ok := apexVariants[name]; ok && c.admin != "" {
			t.scrape = v.Scrape
		}
		t.binary = env.apexBin
		if v, ok := apexVariants[name]; ok && v.Base {
			if env.apexBaseBin == "" {
				return nil, fmt.Errorf("%s needs -apex-base-bin", name)
			}
			t.binary = env.apexBaseBin
		}
		cfg := apexConfig(c)
		t.config = filepath.Join(dir, "apex.toml")
		if err := os.WriteFile(t.config, []byte(cfg), 0o644); err != nil {
			return nil, err
		}
		argv = []string{t.binary, "-config", t.config}
	case name == tFloor, name == tFloorPipe, name == tFloorURing, name == tOrigin:
		// The bench itself, re-executed: -serve-floor, -serve-floor-pipe,
		// -serve-floor-uring or -serve-origin (main.go, serveHidden).
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		t.binary = exe
		argv = []string{exe, "-serve-" + name, t.addr}
		if name != tOrigin {
			argv = append(argv, "-floor-upstream", env.backendAddr)
		}
	case name == tNginx:
		bin, err := exec.LookPath("nginx")
		if err != nil {
			return nil, err
		}
		t.binary = bin
		cfg := nginxConfig(dir, t.addr, env.backendAddr, env.pinned, env.upstreamKA)
		t.config = filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(t.config, []byte(cfg), 0o644); err != nil {
			return nil, err
		}
		argv = []string{bin, "-e", filepath.Join(dir, "error.log"), "-p", dir + "/", "-c", t.config, "-g", "daemon off;"}
	case name == tHAProxy:
		bin, err := exec.LookPath("haproxy")
		if err != nil {
			return nil, err
		}
		t.binary = bin
		cfg := haproxyConfig(t.addr, env.backendAddr, env.pinned)
		t.config = filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(t.config, []byte(cfg), 0o644); err != nil {
			return nil, err
		}
		argv = []string{bin, "-f", t.config, "-db"}
	default:
		return nil, fmt.Errorf("unknown target %q", name)
	}
	p, err := startProc(name, env.proxyCPUs, logPath, dir, nil, argv...)
	if err != nil {
		return nil, err
	}
	t.proc = p
	if err := waitListening(t.addr, p, env.startWait); err != nil {
		p.stop(2 * time.Second)
		return nil, err
	}
	return t, nil
}

// apexConfig is the TOML config of apex for the bench: one [[backend]]
// named "echo" with c's servers, and one catch-all route to it. An empty
// c.admin leaves out the [admin] table, an empty c.owner leaves apex's
// default upstream owner, and c.extra holds more [[backend]] lines.
func apexConfig(c apexConf) string {
	loops := "# loops omitted: 0 = GOMAXPROCS (free layout)\n"
	if c.pinned {
		loops = "loops = 1\n"
	}
	admin := "# no admin endpoint\n"
	if c.admin != "" {
		admin = fmt.Sprintf("[admin]\nlisten = %q\n", c.admin)
	}
	servers := make([]string, len(c.servers))
	for i, s := range c.servers {
		servers[i] = fmt.Sprintf("%q", s)
	}
	ownerLine := ""
	if c.owner != "" {
		ownerLine = fmt.Sprintf("owner = %q\n", c.owner)
	}
	if c.extra != "" {
		ownerLine += c.extra + "\n"
	}
	return fmt.Sprintf(`# generated by tools/bench
[server]
listen = %q
%s
%s
[log]
access = "off"

[[backend]]
name = "echo"
servers = [%s]
conns = %d
%s
[[route]]
backend = "echo"
`, c.listen, loops, admin, strings.Join(servers, ", "), c.conns, ownerLine)
}

// nginxConfig is a self-contained nginx.conf: every path is inside dir,
// upstream keep-alive, HTTP/1.1 to the upstream, no access log. Responses
// are buffered in memory (the 64 KiB body fits in proxy_buffers), never in
// temp files.
func nginxConfig(dir, listen, backend string, pinned bool, keepalive int) string {
	workers := "auto"
	if pinned {
		workers = "1"
	}
	p := func(s string) string { return filepath.Join(dir, s) }
	return fmt.Sprintf(`# generated by tools/bench
worker_processes %s;
pid %s;
error_log %s warn;
worker_rlimit_nofile 65536;

events {
    worker_connections 16384;
    use epoll;
}

http {
    access_log off;
    client_body_temp_path %s;
    proxy_temp_path %s;
    fastcgi_temp_path %s;
    uwsgi_temp_path %s;
    scgi_temp_path %s;

    keepalive_timeout 120s;
    keepalive_requests 100000000;

    upstream echo {
        server %s;
        keepalive %d;
        keepalive_requests 100000000;
    }

    server {
        listen %s;
        location / {
            proxy_pass http://echo;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffer_size 16k;
            proxy_buffers 16 8k;
            proxy_busy_buffers_size 32k;
            proxy_max_temp_file_size 0;
        }
    }
}
`, workers, p("nginx.pid"), p("error.log"),
		p("client_body_temp"), p("proxy_temp"), p("fastcgi_temp"), p("uwsgi_temp"), p("scgi_temp"),
		backend, keepalive, listen)
}

// haproxyConfig is an HTTP-mode haproxy config with server-side connection
// reuse and no logging.
func haproxyConfig(listen, backend string, pinned bool) string {
	nbthread := "    # nbthread omitted: one thread per CPU (free layout)\n"
	if pinned {
		nbthread = "    nbthread 1\n"
	}
	return fmt.Sprintf(`# generated by tools/bench
global
%s    maxconn 8192

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s

frontend fe
    bind %s
    default_backend be

backend be
    server echo %s
`, nbthread, listen, backend)
}

// verifyBody does one GET with net/http and checks status 200 and the body
// length, so that a broken target is reported instead of benchmarked.
func verifyBody(ctx context.Context, url string, want int) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(want)+1<<20))
	if err != nil {
		return fmt.Errorf("GET %s: reading body: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d, want 200", url, resp.StatusCode)
	}
	if len(body) != want {
		return fmt.Errorf("GET %s: body %d bytes, want %d", url, len(body), want)
	}
	return nil
}
