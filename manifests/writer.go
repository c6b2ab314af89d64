package manifests

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/parquet-go/parquet-go"
)

// writerBatch is how many rows are buffered before they are written.
const writerBatch = 256

// Writer streams rows of one manifest type to a Parquet file. Rows go to a temporary file in
// the same folder, which is renamed over the path only when Close succeeds, so a reader
// never sees a half-written manifest and a failed write leaves the old file as it was.
type Writer[T any] struct {
	path, what string
	tmp        *os.File
	w          *parquet.GenericWriter[T]
	buf        []T
}

// NewWriter starts a manifest of rows T at path, whose folder must exist; what names the
// manifest in errors.
func NewWriter[T any](path, what string) (*Writer[T], error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("write %s %s: %w", what, path, err)
	}
	return &Writer[T]{path: path, what: what, tmp: tmp, w: parquet.NewGenericWriter[T](tmp)}, nil
}

// Write adds rows.
func (mw *Writer[T]) Write(rows ...T) error {
	mw.buf = append(mw.buf, rows...)
	if len(mw.buf) >= writerBatch {
		return mw.flush()
	}
	return nil
}

func (mw *Writer[T]) flush() error {
	if len(mw.buf) == 0 {
		return nil
	}
	if _, err := mw.w.Write(mw.buf); err != nil {
		return mw.wrap(err)
	}
	mw.buf = mw.buf[:0]
	return nil
}

func (mw *Writer[T]) wrap(err error) error {
	return fmt.Errorf("write %s %s: %w", mw.what, mw.path, err)
}

// Close finishes the file and renames it to its path; on failure nothing is left behind.
func (mw *Writer[T]) Close() error {
	err := mw.flush()
	if err == nil {
		if err = mw.w.Close(); err != nil {
			err = mw.wrap(err)
		}
	}
	if err == nil {
		if err = mw.tmp.Sync(); err != nil {
			err = mw.wrap(err)
		}
	}
	if err == nil {
		// Readable by all, as a file written in place would be (a temporary file is 0600).
		if err = mw.tmp.Chmod(0o644); err != nil {
			err = mw.wrap(err)
		}
	}
	if cerr := mw.tmp.Close(); err == nil && cerr != nil {
		err = mw.wrap(cerr)
	}
	if err == nil {
		if err = os.Rename(mw.tmp.Name(), mw.path); err != nil {
			err = mw.wrap(err)
		}
	}
	if err != nil {
		os.Remove(mw.tmp.Name())
	}
	return err
}

// Abort drops the temporary file; the path is left as it was.
func (mw *Writer[T]) Abort() {
	mw.tmp.Close()
	os.Remove(mw.tmp.Name())
}
