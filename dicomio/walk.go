package dicomio

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WalkFiles calls fn for every regular file under paths (files, or folders walked
// recursively, in lexical order; symbolic links to files are followed, links to folders are
// not). A DICOMDIR is optional: files are found by walking, and a
// DICOMDIR met on the way is reported like any other file. fn's error stops the walk; a
// path that does not exist is an error.
func WalkFiles(ctx context.Context, paths []string, fn func(path string) error) error {
	for _, root := range paths {
		st, err := os.Stat(root)
		if err != nil {
			return fmt.Errorf("walk %s: %w", root, err)
		}
		if !st.IsDir() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(root); err != nil {
				return err
			}
			continue
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("walk %s: %w", path, err)
			}
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			if d.Type().IsRegular() {
				return fn(path)
			}
			if d.Type()&fs.ModeSymlink != 0 {
				// A link to a file is read (links to folders are not followed: no cycles).
				if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
					return fn(path)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// CountFiles counts the regular files under paths, for progress reporting.
func CountFiles(ctx context.Context, paths []string) (int, error) {
	n := 0
	err := WalkFiles(ctx, paths, func(string) error { n++; return nil })
	return n, err
}

// IsDICOMFile reports whether the file at path is DICOM by its content: "DICM" after a
// 128-byte preamble, or a data set without preamble and meta information that starts with a
// plausible element. The file name does not matter.
func IsDICOMFile(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, 132)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return false, err
	}
	return sniffDICOM(buf[:n]), nil
}
