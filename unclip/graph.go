package unclip

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	ort "github.com/yalue/onnxruntime_go"
)

// Tensor is a float32 tensor in C order (images are NCHW).
type Tensor struct {
	Shape []int
	Data  []float32
}

// Batch is the first dimension.
func (t Tensor) Batch() int {
	if len(t.Shape) == 0 {
		return 0
	}
	return t.Shape[0]
}

// Row returns row i of the first dimension as a batch of one (sharing data).
func (t Tensor) Row(i int) (Tensor, error) {
	if err := t.check(); err != nil {
		return Tensor{}, err
	}
	if i < 0 || i >= t.Shape[0] {
		return Tensor{}, fmt.Errorf("row %d of a batch of %d", i, t.Shape[0])
	}
	n := len(t.Data) / t.Shape[0]
	shape := append([]int{1}, t.Shape[1:]...)
	return Tensor{Shape: shape, Data: t.Data[i*n : (i+1)*n]}, nil
}

func (t Tensor) check() error {
	n, err := shapeSize(t.Shape)
	if err != nil {
		return err
	}
	if n != len(t.Data) || len(t.Shape) == 0 {
		return fmt.Errorf("tensor shape %v does not hold %d values", t.Shape, len(t.Data))
	}
	return nil
}

// graph is one ONNX graph loaded in a DynamicAdvancedSession (safe for concurrent runs).
type graph struct {
	role    string
	file    string
	inputs  []string
	outputs []string
	sess    *ort.DynamicAdvancedSession
	// runNanos accumulates the time spent inside ONNX Runtime's Run (for GraphTime).
	runNanos atomic.Int64
	runs     atomic.Int64
}

func loadGraph(b *Bundle, role string, c *Component, inputs, outputs []string, o RuntimeOptions) (g *graph, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("load %s (%s): panic in ONNX Runtime: %v", role, c.File, r)
		}
	}()
	if err := checkDescriptors(c, inputs, outputs); err != nil {
		return nil, fmt.Errorf("bundle %s: components.%s: %w", b.Manifest.Name, role, err)
	}
	data, err := b.ReadFile(c.File)
	if err != nil {
		return nil, err
	}
	so, err := newSessionOptions(o)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", c.File, err)
	}
	defer so.Destroy()
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, inputs, outputs, so)
	if err != nil {
		return nil, fmt.Errorf("load %s (%s): %w", role, c.File, err)
	}
	return &graph{role: role, file: c.File, inputs: inputs, outputs: outputs, sess: sess}, nil
}

// checkDescriptors checks that the manifest declares the documented input and output names.
func checkDescriptors(c *Component, inputs, outputs []string) error {
	if len(c.Inputs) == 0 && len(c.Outputs) == 0 {
		return nil // descriptors are informative; the graph itself is checked when loaded
	}
	has := func(list []TensorSpec, name string) bool {
		for _, s := range list {
			if s.Name == name {
				return true
			}
		}
		return false
	}
	for _, n := range inputs {
		if !has(c.Inputs, n) {
			return fmt.Errorf("input %q is not declared", n)
		}
	}
	for _, n := range outputs {
		if !has(c.Outputs, n) {
			return fmt.Errorf("output %q is not declared", n)
		}
	}
	return nil
}

func (g *graph) close() {
	if g != nil && g.sess != nil {
		_ = g.sess.Destroy()
		g.sess = nil
	}
}

// input is one named graph input before it becomes an ORT value.
type input struct {
	shape []int64
	f32   []float32
	i64   []int64
}

func f32In(data []float32, shape ...int) input {
	return input{shape: toI64(shape), f32: data}
}

func i64In(data []int64, shape ...int) input {
	return input{shape: toI64(shape), i64: data}
}

func toI64(s []int) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[i] = int64(v)
	}
	return out
}

// run evaluates the graph; ins are in g.inputs order. It returns the float32 outputs (copied)
// and their shapes, and stops early when ctx is cancelled.
func (g *graph) run(ctx context.Context, ins ...input) (outs []Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("run %s: panic in ONNX Runtime: %v", g.role, r)
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(ins) != len(g.inputs) {
		return nil, fmt.Errorf("run %s: %d inputs, want %d", g.role, len(ins), len(g.inputs))
	}
	values := make([]ort.Value, len(ins))
	defer func() {
		for _, v := range values {
			if v != nil {
				_ = v.Destroy()
			}
		}
	}()
	for i, in := range ins {
		var v ort.Value
		var err error
		if in.i64 != nil {
			v, err = ort.NewTensor(ort.NewShape(in.shape...), in.i64)
		} else {
			v, err = ort.NewTensor(ort.NewShape(in.shape...), in.f32)
		}
		if err != nil {
			return nil, fmt.Errorf("run %s: input %s: %w", g.role, g.inputs[i], err)
		}
		values[i] = v
	}
	outputs := make([]ort.Value, len(g.outputs))
	defer func() {
		for _, v := range outputs {
			if v != nil {
				_ = v.Destroy()
			}
		}
	}()
	var opts *ort.RunOptions
	if ctx.Done() != nil { // a cancellable context: let cancellation terminate the run
		if opts, err = ort.NewRunOptions(); err != nil {
			return nil, fmt.Errorf("run %s: %w", g.role, err)
		}
		defer opts.Destroy()
		stop := context.AfterFunc(ctx, func() { _ = opts.Terminate() })
		defer stop()
	}
	start := time.Now()
	err = g.sess.RunWithOptions(values, outputs, opts)
	g.runNanos.Add(int64(time.Since(start)))
	g.runs.Add(1)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("run %s (%s): %w", g.role, g.file, err)
	}
	outs = make([]Tensor, len(outputs))
	for i, v := range outputs {
		t, ok := v.(*ort.Tensor[float32])
		if !ok {
			return nil, fmt.Errorf("run %s: output %s is %T, want a float32 tensor", g.role, g.outputs[i], v)
		}
		shape := t.GetShape()
		s := make([]int, len(shape))
		for j, d := range shape {
			s[j] = int(d)
		}
		outs[i] = Tensor{Shape: s, Data: append([]float32(nil), t.GetData()...)}
	}
	return outs, nil
}
