package config

import (
	"bytes"
	"fmt"

	"github.com/pelletier/go-toml/v2"
)

// TOML returns the configuration as a TOML document, for showing what the
// proxy runs with (the admin endpoint serves it). Every default is written
// out, so the document is the complete configuration, not a copy of the
// file it came from.
//
// For a Config from Parse, Load or Default, Parse accepts the document
// and decodes it to an equal Config, Source aside.
func (c *Config) TOML() ([]byte, error) {
	var buf bytes.Buffer
	source := c.Source
	if source == "" {
		source = "Go code"
	}
	// %q keeps an odd file name on the comment line.
	fmt.Fprintf(&buf, "# Apex configuration as running, from %q, with defaults written out.\n\n", source)
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return nil, fmt.Errorf("config: encoding TOML: %w", err)
	}
	return buf.Bytes(), nil
}
