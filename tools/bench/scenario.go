package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// A scenario replaces the default load matrix with its own points (other
// paths, connection counts, or a wrk Lua script for pipelining, POSTs, ...).
// Each scenario lives in its own file and registers itself from an init
// function:
//
//	func init() {
//		registerScenario(scenario{
//			Name:        "pipeline",
//			Description: "16 pipelined GETs per connection",
//			Points: func(o *options) []point {
//				return []point{{Body: "small", Path: "/", BodyBytes: 14, Conns: 64, Script: pipelineLua}}
//			},
//		})
//	}
//
// Selected with -scenario NAME; every other flag (targets, layout,
// duration, repeats) still applies.
//
// A reliability scenario sets Run instead of Points: it drives its own
// clients and backends against apex (slowloris, slow readers, a killed
// backend, a soak, ...), checks its pass criteria and returns a report of
// figures (see scenario_env.go and docs/RELIABILITY.md).
type scenario struct {
	Name        string
	Description string
	// Points returns the load points to run for every target. Each
	// point's Path must be one the backend serves (see bodyPaths). Nil
	// when Run is set.
	Points func(o *options) []point
	// Targets, when not empty, are the targets a Points scenario runs
	// unless -targets is given: typically direct and apex variants
	// (variants.go) that differ in what the scenario studies. Empty keeps
	// -targets' default.
	Targets []string
	// Run, when not nil, replaces the wrk matrix: it runs the scenario
	// in env and fills env.rep. It returns an error only when the
	// scenario could not be carried out (apex did not start, ...); a
	// failed pass criterion is a figure with Pass false, which makes the
	// bench exit 1. Run must return within a bounded time and stop
	// everything it started.
	Run func(ctx context.Context, env *scenarioEnv) error
}

// scenarios is the registry, filled by init functions in scenario_*.go.
var scenarios = map[string]scenario{}

func registerScenario(s scenario) {
	if s.Name == "" || (s.Points == nil) == (s.Run == nil) {
		panic("registerScenario: scenario needs a Name and exactly one of Points and Run")
	}
	if s.Run != nil && len(s.Targets) > 0 {
		panic("registerScenario: " + s.Name + ": Targets is for Points scenarios")
	}
	if _, dup := scenarios[s.Name]; dup {
		panic("registerScenario: duplicate scenario " + s.Name)
	}
	scenarios[s.Name] = s
}

func scenarioNames() []string {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// lookupScenario finds a registered scenario or explains which exist.
func lookupScenario(name string) (scenario, error) {
	if s, ok := scenarios[name]; ok {
		return s, nil
	}
	known := "none are registered yet"
	if names := scenarioNames(); len(names) > 0 {
		known = "known: " + strings.Join(names, ", ")
	}
	return scenario{}, fmt.Errorf("unknown scenario %q (%s)", name, known)
}
