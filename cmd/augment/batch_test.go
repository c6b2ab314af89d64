package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestForEachOrdered(t *testing.T) {
	for _, workers := range []int{1, 2, 5} {
		var got []int
		err := forEachOrdered(context.Background(), 20, workers,
			func(_ context.Context, i int) (int, error) {
				time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond) // finish out of order
				if i == 7 {
					panic("boom")
				}
				if i == 9 {
					return 0, errors.New("nine")
				}
				return i * i, nil
			},
			func(i, r int, err error) error {
				switch {
				case i == 7:
					if err == nil || !strings.Contains(err.Error(), "boom") {
						t.Errorf("workers %d: the panic of item 7 came back as %v", workers, err)
					}
				case i == 9:
					if err == nil || err.Error() != "nine" {
						t.Errorf("workers %d: item 9's error: %v", workers, err)
					}
				case err != nil || r != i*i:
					t.Errorf("workers %d: item %d: %d, %v", workers, i, r, err)
				}
				got = append(got, i)
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range got {
			if v != i {
				t.Fatalf("workers %d: emitted %v, want 0 … 19 in order", workers, got)
			}
		}
		if len(got) != 20 {
			t.Fatalf("workers %d: %d results", workers, len(got))
		}
	}
	// An emit error stops emitting and is returned; every work item still finishes.
	stop := errors.New("stop")
	emitted := 0
	err := forEachOrdered(context.Background(), 10, 3, func(context.Context, int) (int, error) { return 0, nil },
		func(i, _ int, _ error) error {
			emitted++
			if i == 3 {
				return stop
			}
			return nil
		})
	if !errors.Is(err, stop) || emitted != 4 {
		t.Errorf("err %v after %d emits, want stop after 4", err, emitted)
	}
}
