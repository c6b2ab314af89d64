package main

import (
	"os"

	"github.com/medaugment/augment/unclip"
	"github.com/medaugment/augment/unclip/bundles"
)

// bundleEnv names the environment variable that may select the bundle folder.
const bundleEnv = "AUGMENT_BUNDLE"

// openBundle loads the bundle in dir, else in $AUGMENT_BUNDLE, else the embedded default.
func openBundle(dir string) (*unclip.Bundle, error) {
	if dir == "" {
		dir = os.Getenv(bundleEnv)
	}
	if dir == "" {
		return bundles.Default()
	}
	return unclip.LoadBundle(dir)
}
