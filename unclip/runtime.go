package unclip

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ORTVersion is the ONNX Runtime version onnxruntime_go v1.27.0 is built against.
const ORTVersion = "1.24.1"

// ORTLibEnv names the environment variable that points at the ONNX Runtime shared library.
const ORTLibEnv = "AUGMENT_ORT_LIB"

// ErrORTMissing is returned (wrapped) when no ONNX Runtime shared library can be found.
var ErrORTMissing = errors.New("ONNX Runtime shared library not found")

// ortEnv guards onnxruntime_go's process-global environment: it can be initialised once per
// process, with one library. It is the package's only process-wide state.
var ortEnv struct {
	once sync.Once
	lib  string
	err  error
}

// FindORTLibrary returns the path of the ONNX Runtime shared library: explicit when given, else
// $AUGMENT_ORT_LIB, else third_party/onnxruntime-1.24.1/ under the module root (found by walking up
// from the working directory and from the executable to go.mod), else the system library folders.
func FindORTLibrary(explicit string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("ONNX Runtime library %s: %w", explicit, err)
		}
		return explicit, nil
	}
	if env := os.Getenv(ORTLibEnv); env != "" {
		if _, err := os.Stat(env); err != nil {
			return "", fmt.Errorf("ONNX Runtime library %s (from $%s): %w", env, ORTLibEnv, err)
		}
		return env, nil
	}
	name := "libonnxruntime.so." + ORTVersion
	var tried []string
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, start := range starts {
		if root, ok := moduleRoot(start); ok {
			p := filepath.Join(root, "third_party", "onnxruntime-"+ORTVersion, name)
			tried = append(tried, p)
			if fileExists(p) {
				return p, nil
			}
		}
	}
	for _, dir := range []string{"/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/opt/onnxruntime/lib"} {
		for _, n := range []string{name, "libonnxruntime.so"} {
			p := filepath.Join(dir, n)
			tried = append(tried, p)
			if fileExists(p) {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%w: set $%s or run `make setup` (tried %v)", ErrORTMissing, ORTLibEnv, tried)
}

func moduleRoot(dir string) (string, bool) {
	if a, err := filepath.Abs(dir); err == nil {
		dir = a
	}
	for {
		if fileExists(filepath.Join(dir, "go.mod")) {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// InitORT loads the ONNX Runtime library (FindORTLibrary(lib)) once per process and checks its
// version. Later calls return the first call's result; asking for another library then is an error.
func InitORT(lib string) (string, error) {
	path, err := FindORTLibrary(lib)
	if err != nil {
		return "", err
	}
	ortEnv.once.Do(func() {
		ortEnv.lib = path
		ortEnv.err = initORT(path)
	})
	if ortEnv.err != nil {
		return "", ortEnv.err
	}
	if abs(path) != abs(ortEnv.lib) {
		return "", fmt.Errorf("ONNX Runtime is already loaded from %s in this process; cannot load %s", ortEnv.lib, path)
	}
	return ortEnv.lib, nil
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		if r, err := filepath.EvalSymlinks(a); err == nil {
			return r
		}
		return a
	}
	return p
}

func initORT(path string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("load ONNX Runtime %s: panic: %v", path, r)
		}
	}()
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("load ONNX Runtime %s (onnxruntime_go needs version %s): %w", path, ORTVersion, err)
	}
	if v := ort.GetVersion(); v != ORTVersion {
		_ = ort.DestroyEnvironment()
		return fmt.Errorf("ONNX Runtime %s is version %s; onnxruntime_go v1.27.0 needs exactly %s (run `make setup` or set $%s)", path, v, ORTVersion, ORTLibEnv)
	}
	return nil
}

// RuntimeOptions configures how graphs run.
type RuntimeOptions struct {
	// Library is the ONNX Runtime shared library ("" = FindORTLibrary's search).
	Library string
	// IntraOpThreads is the number of threads one graph evaluation uses (0 = 1).
	IntraOpThreads int
	// CUDA asks for the CUDA execution provider; when the library has none, loading fails.
	CUDA bool
	// CUDADevice selects the GPU.
	CUDADevice int
	// Spin lets idle intra-op threads spin waiting for work (lower latency, but it burns CPU
	// that other processes on a shared machine could use); off by default.
	Spin bool
}

func newSessionOptions(o RuntimeOptions) (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	threads := o.IntraOpThreads
	if threads <= 0 {
		threads = 1
	}
	if err := so.SetIntraOpNumThreads(threads); err != nil {
		so.Destroy()
		return nil, fmt.Errorf("set intra-op threads: %w", err)
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		so.Destroy()
		return nil, fmt.Errorf("set inter-op threads: %w", err)
	}
	spin := "0"
	if o.Spin {
		spin = "1"
	}
	if err := so.AddSessionConfigEntry("session.intra_op.allow_spinning", spin); err != nil {
		so.Destroy()
		return nil, fmt.Errorf("set thread spinning: %w", err)
	}
	if o.CUDA {
		cuda, err := ort.NewCUDAProviderOptions()
		if err != nil {
			so.Destroy()
			return nil, fmt.Errorf("CUDA execution provider unavailable in this ONNX Runtime: %w", err)
		}
		defer cuda.Destroy()
		if err := cuda.Update(map[string]string{"device_id": fmt.Sprint(o.CUDADevice)}); err != nil {
			so.Destroy()
			return nil, fmt.Errorf("CUDA execution provider unavailable in this ONNX Runtime (a CPU-only build?): %w", err)
		}
		if err := so.AppendExecutionProviderCUDA(cuda); err != nil {
			so.Destroy()
			return nil, fmt.Errorf("CUDA execution provider unavailable in this ONNX Runtime: %w", err)
		}
	}
	return so, nil
}
