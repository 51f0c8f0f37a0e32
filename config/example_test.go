package config_test

import (
	"fmt"
	"log"
	"reflect"
	"testing"
	"time"

	"github.com/apex-epoll/apex/config"
)

// minimal is the smallest useful configuration: one listen address, one
// backend, one route.
const minimal = `
[server]
listen = "127.0.0.1:8080"        # a string or a list of strings

[[backend]]
name = "app"
servers = ["127.0.0.1:9000"]

[[route]]
host = "example.test"            # optional
path_prefix = "/"                # optional
backend = "app"
`

func ExampleParse() {
	cfg, err := config.Parse("apex.toml", []byte(minimal))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listen:", cfg.Server.Listen)
	fmt.Println("header timeout:", cfg.Server.HeaderTimeout)
	b := cfg.Backends[0]
	fmt.Println("backend:", b.Name, b.Servers, "conns", b.Conns, "queue", b.Queue, "owner", b.Owner)
	r := cfg.Routes[0]
	fmt.Printf("route: host %q prefix %q -> %s\n", r.Host, r.PathPrefix, r.Backend)
	// Output:
	// listen: [127.0.0.1:8080]
	// header timeout: 10s
	// backend: app [127.0.0.1:9000] conns 16 queue 64 owner loop
	// route: host "example.test" prefix "/" -> app
}

// Errors name the file, the line and the key.
func ExampleParse_error() {
	_, err := config.Parse("apex.toml", []byte(`
[[backend]]
name = "app"
servers = ["127.0.0.1:9000", "127.0.0.1"]

[[route]]
backend = "app"
`))
	fmt.Println(err)
	// Output:
	// apex.toml:4: backend[0].servers[1]: invalid address "127.0.0.1": missing port
}

func TestMinimalDefaults(t *testing.T) {
	got, err := config.Parse("apex.toml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	want := &config.Config{
		Source: "apex.toml",
		Server: config.Server{
			Listen:          []string{"127.0.0.1:8080"},
			Loops:           0, // GOMAXPROCS
			HeaderTimeout:   config.Duration(10 * time.Second),
			IdleTimeout:     config.Duration(60 * time.Second),
			BodyTimeout:     config.Duration(60 * time.Second),
			ShutdownGrace:   config.Duration(30 * time.Second),
			MaxRequestLine:  8192,
			MaxHeaderBytes:  32768,
			MaxHeaderFields: 100,
			MaxBodyBytes:    0, // unlimited
			OutputBuffer:    262144,
		},
		Admin: config.Admin{Listen: ""}, // off
		Log:   config.Log{Level: "info", Access: "off", Format: "json"},
		Backends: []config.Backend{{
			Name:    "app",
			Servers: []config.ServerAddr{{Addr: "127.0.0.1:9000", Weight: 1}},
			Conns:   16,
			Queue:   64, Pipeline: 1,
			Owner:           "loop",
			ConnectTimeout:  config.Duration(5 * time.Second),
			ResponseTimeout: config.Duration(60 * time.Second),
			IdleTimeout:     config.Duration(60 * time.Second),
			Balance:         "p2c",
			HashKey:         config.HashKey{}, // none: balance is not "hash"
			Health: config.Health{
				Path:     "", // passive health only
				Interval: config.Duration(time.Second),
				Timeout:  config.Duration(500 * time.Millisecond),
				Rise:     2,
				Fall:     3,
			},
			Circuit: config.Circuit{
				ConsecutiveFailures: 5,
				FailureRatio:        0.5,
				Window:              config.Duration(10 * time.Second),
				MinRequests:         20,
				CoolDown:            config.Duration(5 * time.Second),
				HalfOpenTrials:      3,
			},
			Limits: config.Limits{
				Adaptive:     false,
				MinLimit:     4,
				MaxLimit:     1000,
				Queue:        256,
				QueueTimeout: config.Duration(100 * time.Millisecond),
				ShedStatus:   503,
			},
			Retry: config.Retry{Attempts: 2, Budget: 0.2},
		}},
		Routes: []config.Route{{Host: "example.test", PathPrefix: "/", Backend: "app"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(minimal):\n got  %+v\n want %+v", got, want)
	}
	if d := got.Server.HeaderTimeout.D(); d != 10*time.Second {
		t.Errorf("HeaderTimeout.D() = %v", d)
	}
}
