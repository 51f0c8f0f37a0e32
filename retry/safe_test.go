package retry

import (
	"fmt"
	"testing"
)

func TestSafe(t *testing.T) {
	cases := []struct {
		method string
		key    bool
		stage  Stage
		want   bool
	}{
		// Never reached the wire: safe for every method.
		{"POST", false, BeforeWrite, true},
		{"PATCH", false, BeforeWrite, true},
		{"CONNECT", false, BeforeWrite, true},
		{"get", false, BeforeWrite, true},
		{"GET", false, BeforeWrite, true},
		// Written, no response byte: idempotent methods or a key.
		{"GET", false, AfterWrite, true},
		{"HEAD", false, AfterWrite, true},
		{"OPTIONS", false, AfterWrite, true},
		{"TRACE", false, AfterWrite, true},
		{"PUT", false, AfterWrite, true},
		{"DELETE", false, AfterWrite, true},
		{"POST", false, AfterWrite, false},
		{"PATCH", false, AfterWrite, false},
		{"CONNECT", false, AfterWrite, false},
		{"LOCK", false, AfterWrite, false},
		{"POST", true, AfterWrite, true},
		{"PATCH", true, AfterWrite, true},
		// Methods are case-sensitive and compared whole.
		{"get", false, AfterWrite, false},
		{"Get", false, AfterWrite, false},
		{"put", false, AfterWrite, false},
		{"GET ", false, AfterWrite, false},
		{"GETS", false, AfterWrite, false},
		{"GE", false, AfterWrite, false},
		{"", false, AfterWrite, false},
		// A response byte was seen: never, key or not.
		{"GET", false, AfterResponse, false},
		{"PUT", false, AfterResponse, false},
		{"POST", true, AfterResponse, false},
		{"GET", true, AfterResponse, false},
		// An unknown stage is treated as the worst.
		{"GET", true, Stage(9), false},
	}
	for _, c := range cases {
		if got := Safe([]byte(c.method), c.key, c.stage); got != c.want {
			t.Errorf("Safe(%q, key=%v, %v) = %v, want %v", c.method, c.key, c.stage, got, c.want)
		}
	}
}

func TestStageZeroIsConservative(t *testing.T) {
	var s Stage
	if s != AfterResponse || Safe([]byte("GET"), true, s) {
		t.Fatalf("zero Stage is %v and allows a retry", s)
	}
}

func TestStageString(t *testing.T) {
	for s, want := range map[Stage]string{BeforeWrite: "before_write", AfterWrite: "after_write",
		AfterResponse: "after_response", 9: "unknown"} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", s, s.String(), want)
		}
	}
}

func ExampleSafe() {
	post := []byte("POST")
	fmt.Println(Safe(post, false, BeforeWrite)) // connect refused
	fmt.Println(Safe(post, false, AfterWrite))  // reset before the response
	fmt.Println(Safe(post, true, AfterWrite))   // ... with an Idempotency-Key
	fmt.Println(Safe([]byte("GET"), false, AfterResponse))
	// Output:
	// true
	// false
	// true
	// false
}
