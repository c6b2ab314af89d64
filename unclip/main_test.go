package unclip

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// TestMain skips the examples that run graphs when ONNX Runtime is missing (tests skip themselves).
func TestMain(m *testing.M) {
	flag.Parse()
	if _, err := FindORTLibrary(""); err != nil {
		fmt.Fprintf(os.Stderr, "skipping the ONNX Runtime examples: %v\n", err)
		skip := "^ExamplePipeline"
		if s := flag.Lookup("test.skip"); s != nil && s.Value.String() != "" {
			skip = s.Value.String() + "|" + skip
		}
		_ = flag.Set("test.skip", skip)
	}
	os.Exit(m.Run())
}
