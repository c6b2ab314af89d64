// Package bundles carries augment's default model bundle inside the binary, so that the
// main job runs on a fresh machine with no model download.
//
// The default bundle, cxr-tiny, is trained by the project's own training kit
// (unclip/train, `make models`) on the chest radiographs of the project's data; see
// cxr-tiny/MODEL_CARD.md for its data, licence (non-commercial research use), training and
// evaluation.
package bundles

import (
	"embed"
	"fmt"
	"io/fs"

	"github.com/medaugment/augment/unclip"
)

// DefaultName is the name of the embedded bundle.
const DefaultName = "cxr-tiny"

//go:embed all:cxr-tiny
var embedded embed.FS

// Default loads and verifies the embedded default bundle.
func Default() (*unclip.Bundle, error) {
	sub, err := fs.Sub(embedded, DefaultName)
	if err != nil {
		return nil, fmt.Errorf("embedded bundle %s: %w", DefaultName, err)
	}
	return unclip.LoadBundleFS(sub, DefaultName+" (embedded)")
}
