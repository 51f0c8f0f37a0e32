package main

import "fmt"

// The two-servers scenario is Phase 2's throughput check: apex balancing
// one [[backend]] over two evio servers (two processes on two ports,
// placed like the bench's one backend: on the load CPUs in the pinned
// layout), with apex's default balance (p2c) and conns = 1, 2, 4 and 8
// upstream connections per server (per loop: the pinned layout has one),
// plus round robin at conns = 8 for comparison. The load is the 14-byte
// body at 64 client connections; direct (wrk against the first server)
// and apex (one server, -apex-conns) run in the same session as the
// references.
//
//	go run ./tools/bench -scenario two-servers -repeats 1 -duration 8s
//
// With pipeline = 1 (apex's default) an upstream connection carries one
// request at a time, so conns = 1 allows two requests in flight in all,
// one per server; the other client requests wait in apex's queues.

// twoServerConns are the conns values of the p2c variants.
var twoServerConns = []int{1, 2, 4, 8}

// twoServerClientConns is wrk's connection count in the scenario.
const twoServerClientConns = 64

// twoServerTargets is the scenario's default target list.
var twoServerTargets = []string{tDirect, tApex}

// twoServerVariant is apex over both servers with conns per server; tag
// and balance name a balance other than apex's default ("" for p2c).
func twoServerVariant(conns int, tag, balance string) apexVariant {
	v := apexVariant{
		Name:        fmt.Sprintf("apex-2s-c%d", conns),
		Description: fmt.Sprintf("two backend servers, balance p2c (apex's default), conns = %d per server", conns),
		Conns:       conns,
		Servers:     2,
	}
	if balance != "" {
		v.Name = fmt.Sprintf("apex-2s-%s-c%d", tag, conns)
		v.Description = fmt.Sprintf("two backend servers, balance %s, conns = %d per server", balance, conns)
		v.Backend = fmt.Sprintf("balance = %q", balance)
	}
	return v
}

func init() {
	variants := []apexVariant{}
	for _, c := range twoServerConns {
		variants = append(variants, twoServerVariant(c, "", ""))
	}
	variants = append(variants, twoServerVariant(8, "rr", "round_robin"))
	for _, v := range variants {
		registerApexVariant(v)
		twoServerTargets = append(twoServerTargets, v.Name)
	}
	registerScenario(scenario{
		Name:        "two-servers",
		Description: "apex balancing over two evio servers, conns = 1, 2, 4, 8 per server (p2c) and round robin at 8; 14-byte body, 64 client connections",
		Targets:     twoServerTargets,
		Points: func(*options) []point {
			return []point{{Body: "small", Path: "/", BodyBytes: bodyPaths["/"], Conns: twoServerClientConns}}
		},
	})
}
