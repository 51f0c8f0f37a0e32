//go:build race

package limit

// The race detector's runtime allocates on its own; allocation counts are
// checked by the non-race run (.ci/run runs them separately).
const raceEnabled = true
