package main

import (
	"strings"
	"testing"

	"github.com/apex-epoll/apex/config"
)

// The generated apex config is checked by apex's own parser, so that a
// change of the config format shows up here rather than as a target that
// does not start.
func TestApexConfig(t *testing.T) {
	cfg := apexConfig("127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003", true, 64, "loop", "pipeline = 8")
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
	free := apexConfig("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", false, 8, "", "")
	c, err = config.Parse("bench.toml", []byte(free))
	if err != nil {
		t.Fatalf("%v\n%s", err, free)
	}
	if strings.Contains(free, "loops =") || c.Server.Loops != 0 || strings.Contains(free, "owner =") {
		t.Fatalf("free layout must leave loops (and an unset owner) to apex:\n%s", free)
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
