// Package train holds the Go side of the unCLIP training kit: its tests run the Python kit in this
// folder (models.py, train.py, export.py, eval.py; Debian's PyTorch through /usr/bin/python3) in
// its --quick mode and load the bundle it exports with package unclip, so that a change on either
// side of the bundle contract (docs/bundle.md) shows up in `go test`. The kit itself is Python;
// docs/training.md describes it.
package train
