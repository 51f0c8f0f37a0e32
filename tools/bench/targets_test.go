package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apex-epoll/apex/config"
)

// The generated apex config is checked by apex's own parser, so that a
// change of the config format shows up here rather than as a target that
// does not start.
func TestApexConfig(t *testing.T) {
	cfg := apexConfig(apexConf{listen: "127.0.0.1:1001", admin: "127.0.0.1:1002", servers: []string{"127.0.0.1:1003"},
		pinned: true, conns: 64, owner: "loop", extra: "pipeline = 8"})
	c, err := config.Parse("bench.toml", []byte(cfg))
	if err != nil {
		t.Fatalf("%v\n%s", err, cfg)
	}
	if len(c.Server.Listen) != 1 || c.Server.Listen[0] != "127.0.0.1:1001" || c.Server.Loops != 1 ||
		c.Admin.Listen != "127.0.0.1:1002" || c.Log.Access != "off" || len(c.Backends) != 1 ||
		c.Backends[0].Name != "echo" || len(c.Backends[0].Servers) != 1 || c.Backends[0].Servers[0].Addr != "127.0.0.1:1003" ||
		c.Backends[0].Conns != 64 || c.Backends[0].Owner != "loop" || len(c.Routes) != 1 || c.Routes[0].Backend != "echo" {
		t.Fatalf("parsed %+v from\n%s", c, cfg)
	}
	free := apexConfig(apexConf{listen: "127.0.0.1:1", servers: []string{"127.0.0.1:3"}, conns: 8})
	c, err = config.Parse("bench.toml", []byte(free))
	if err != nil {
		t.Fatalf("%v\n%s", err, free)
	}
	if strings.Contains(free, "loops =") || c.Server.Loops != 0 || strings.Contains(free, "owner =") {
		t.Fatalf("free layout must leave loops (and an unset owner) to apex:\n%s", free)
	}
	if strings.Contains(free, "[admin]") || c.Admin.Listen != "" {
		t.Fatalf("no admin address, no [admin]:\n%s", free)
	}
}

// The apex target and its variants, from the same environment: what each
// changes, checked through apex's own parser.
func TestApexVariantConfigs(t *testing.T) {
	env := targetEnv{backendAddr: "127.0.0.1:1003", extraBackends: []string{"127.0.0.1:1004"}, pinned: true,
		apexConns: 64, apexOwner: "loop", apexExtra: "pipeline = 2"}
	parse := func(name string, env targetEnv) *config.Config {
		t.Helper()
		ac, err := apexTargetConf(name, env, "127.0.0.1:1001", "127.0.0.1:1002")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cfg := apexConfig(ac)
		c, err := config.Parse(name+".toml", []byte(cfg))
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, cfg)
		}
		if c.Backends[0].Owner != "loop" || c.Backends[0].Pipeline != 2 || c.Server.Loops != 1 {
			t.Errorf("%s: -apex-owner, -apex-backend or the layout not applied: %+v", name, c.Backends[0])
		}
		return c
	}
	servers := func(c *config.Config) []string {
		var out []string
		for _, s := range c.Backends[0].Servers {
			out = append(out, s.Addr)
		}
		return out
	}

	c := parse(tApex, env)
	if got := servers(c); !reflect.DeepEqual(got, []string{"127.0.0.1:1003"}) || c.Backends[0].Conns != 64 || c.Admin.Listen != "" {
		t.Errorf("apex: servers %v conns %d admin %q; want the one backend, -apex-conns, no [admin]", got, c.Backends[0].Conns, c.Admin.Listen)
	}
	profiling := env
	profiling.apexAdmin = true
	if c := parse(tApex, profiling); c.Admin.Listen != "127.0.0.1:1002" {
		t.Errorf("apex under -profile: admin %q, want the pprof listener", c.Admin.Listen)
	}

	c = parse("apex-admin", env)
	if c.Admin.Listen != "127.0.0.1:1002" || len(c.Backends[0].Servers) != 1 || c.Backends[0].Conns != 64 {
		t.Errorf("apex-admin: admin %q servers %v conns %d; want apex plus [admin]", c.Admin.Listen, servers(c), c.Backends[0].Conns)
	}
	if v := apexVariants["apex-admin"]; v.Scrape != time.Second {
		t.Errorf("apex-admin scrapes every %v, want 1s (docs/BENCHMARKS.md says so)", v.Scrape)
	}

	// two-servers: both servers in the list, conns per point, p2c unless
	// the variant says otherwise
	for _, want := range []struct {
		name    string
		conns   int
		balance string
	}{{"apex-2s-c1", 1, "p2c"}, {"apex-2s-c2", 2, "p2c"}, {"apex-2s-c4", 4, "p2c"}, {"apex-2s-c8", 8, "p2c"}, {"apex-2s-rr-c8", 8, "round_robin"}} {
		c := parse(want.name, env)
		b := c.Backends[0]
		if got := servers(c); !reflect.DeepEqual(got, []string{"127.0.0.1:1003", "127.0.0.1:1004"}) || b.Conns != want.conns || b.Balance != want.balance || c.Admin.Listen != "" {
			t.Errorf("%s: servers %v conns %d balance %q admin %q; want both servers, conns %d, %s, no [admin]",
				want.name, got, b.Conns, b.Balance, c.Admin.Listen, want.conns, want.balance)
		}
	}
	if _, err := apexTargetConf("apex-2s-c1", targetEnv{backendAddr: "127.0.0.1:1003"}, "a:1", "a:2"); err == nil {
		t.Error("a two-server variant without a second backend was accepted")
	}
	if _, err := apexTargetConf("apex-nope", env, "a:1", "a:2"); err == nil {
		t.Error("an unknown variant was accepted")
	}
}

func TestTwoServersScenario(t *testing.T) {
	s, err := lookupScenario("two-servers")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{tDirect, tApex, "apex-2s-c1", "apex-2s-c2", "apex-2s-c4", "apex-2s-c8", "apex-2s-rr-c8"}
	if !reflect.DeepEqual(s.Targets, want) {
		t.Errorf("targets %v, want %v", s.Targets, want)
	}
	if _, err := parseTargets(strings.Join(s.Targets, ",")); err != nil {
		t.Error(err)
	}
	if pts := s.Points(nil); len(pts) != 1 || pts[0].Conns != 64 || pts[0].Path != "/" || pts[0].BodyBytes != 14 {
		t.Errorf("points %+v, want the 14-byte body at 64 connections", pts)
	}
	if n := backendServers(s.Targets); n != 2 {
		t.Errorf("backendServers = %d, want 2", n)
	}
	if n := backendServers([]string{tDirect, tApex, "apex-admin"}); n != 1 {
		t.Errorf("backendServers without two-server variants = %d, want 1", n)
	}
}

func TestNginxConfig(t *testing.T) {
	cfg := nginxConfig("/tmp/x/nginx", "127.0.0.1:2001", "127.0.0.1:2002", true, 64)
	for _, want := range []string{
		"worker_processes 1;", "pid /tmp/x/nginx/nginx.pid;", "error_log /tmp/x/nginx/error.log",
		"access_log off;", "proxy_temp_path /tmp/x/nginx/proxy_temp;",
		"server 127.0.0.1:2002;", "keepalive 64;", "proxy_http_version 1.1;", `proxy_set_header Connection "";`,
		"listen 127.0.0.1:2001;", "proxy_max_temp_file_size 0;",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("nginx config lacks %q", want)
		}
	}
	if strings.Count(cfg, "{") != strings.Count(cfg, "}") {
		t.Error("unbalanced braces")
	}
	// nothing outside the temp dir
	for _, l := range strings.Split(cfg, "\n") {
		if strings.Contains(l, "/") && !strings.Contains(l, "/tmp/x/nginx") && !strings.Contains(l, "location /") && !strings.Contains(l, "http://") && !strings.HasPrefix(strings.TrimSpace(l), "#") {
			t.Errorf("path outside the temp dir: %q", l)
		}
	}
	if !strings.Contains(nginxConfig("/d", "a", "b", false, 1), "worker_processes auto;") {
		t.Error("free layout should use worker_processes auto")
	}
}

func TestHAProxyConfig(t *testing.T) {
	cfg := haproxyConfig("127.0.0.1:3001", "127.0.0.1:3002", true)
	for _, want := range []string{"nbthread 1", "mode http", "http-reuse always", "bind 127.0.0.1:3001", "server echo 127.0.0.1:3002"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("haproxy config lacks %q", want)
		}
	}
	if strings.Contains(cfg, "\n    log ") || strings.Contains(cfg, "option httplog") {
		t.Error("haproxy config logs")
	}
	if strings.Contains(haproxyConfig("a", "b", false), "    nbthread 1") {
		t.Error("free layout should not set nbthread")
	}
}
