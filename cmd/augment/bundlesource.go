package main

import (
	"errors"

	"github.com/medaugment/augment/unclip"
)

// openBundle loads the bundle in dir, or the embedded default bundle when dir is empty.
func openBundle(dir string) (*unclip.Bundle, error) {
	if dir == "" {
		return nil, errors.New("no embedded bundle in this build: pass --bundle DIR")
	}
	return unclip.LoadBundle(dir)
}
