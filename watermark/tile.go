package watermark

import (
	"math"
	"slices"
)

// Geometry of the mark. The image's short side is divided into a number of cells (a
// geometry): 112 for images whose short side is at least smallSide px, 56 below, so that a
// cell stays at least 1.1 px wide. The key assigns each of the tileCells×tileCells cells of a
// tile to the pilot or to one coded bit, and the tile repeats over the whole image. The
// detector works on a grid of binsPerCell samples per cell and searches both geometries.
const (
	tileCells   = 16
	binsPerCell = 2
	tileBins    = tileCells * binsPerCell         // 32
	pilotCells  = tileCells*tileCells - codedBits // 96
)

// geometry is the number of cells on the image's short side.
type geometry int

const (
	geomLarge geometry = 112
	geomSmall geometry = 56
	smallSide          = 160 // below this short side, the small geometry
)

// geometries are searched by the detector, large first.
var geometries = []geometry{geomLarge, geomSmall}

// geometryFor is the geometry the embedder uses for a w×h image.
func geometryFor(w, h int) geometry {
	if min(w, h) < int(smallSide) {
		return geomSmall
	}
	return geomLarge
}

// foldHighPass is the radius, in bins of a full tile, of the cyclic high-pass applied to
// the fold before the pilot and the cells are read. The small geometry has only about 3.5
// tiles along the short side, too few for the host image's low frequencies to average out
// of the fold, so it removes them; the large geometry's 7 tiles average them out, and a
// high-pass there would remove more of the mark than of the host (measured on the suite:
// noise 2 % payload 18/23 without, 6–15/23 with radii 2–4).
func (g geometry) foldHighPass() int {
	if g < (geomSmall+geomLarge)/2 {
		return 3
	}
	return 0
}

// alternatives lists the geometries Embed tries, in order, when its self-check fails: g
// itself, then 8/7, 15/14 and 13/14 times as many cells, which the detector's scale search
// (0.65 to 2.4) finds at scales 0.875, 0.93 and 1.08 (3/4 and 6/7 were tried too: they
// rescued none of the images these leave).
func (g geometry) alternatives() []geometry {
	return []geometry{g, g * 8 / 7, g * 15 / 14, g * 13 / 14}
}

// workShort is the working grid's short side; maxWorkLong the most the detector reads on
// the long side (centred), so that a scale error drifts little across it.
func (g geometry) workShort() int   { return int(g) * binsPerCell }
func (g geometry) maxWorkLong() int { return g.workShort() * 3 / 2 }

// renderTile draws cell values on the bin grid with bilinear interpolation between cell
// centres (cell i's centre is at bin 2i+0.5), periodically.
func renderTile(cells []float64) []float64 {
	t := make([]float64, tileBins*tileBins)
	// 1-D weights: bin 2i gets 0.25·v[i-1] + 0.75·v[i]; bin 2i+1 gets 0.75·v[i] + 0.25·v[i+1].
	for by := 0; by < tileBins; by++ {
		cy0, fy := binCell(by)
		for bx := 0; bx < tileBins; bx++ {
			cx0, fx := binCell(bx)
			cy1, cx1 := (cy0+1)%tileCells, (cx0+1)%tileCells
			v := (1-fy)*((1-fx)*cells[cy0*tileCells+cx0]+fx*cells[cy0*tileCells+cx1]) +
				fy*((1-fx)*cells[cy1*tileCells+cx0]+fx*cells[cy1*tileCells+cx1])
			t[by*tileBins+bx] = v
		}
	}
	return t
}

// binCell returns the lower cell and the interpolation weight of the upper one for bin b.
func binCell(b int) (int, float64) {
	u := (float64(b)+0.5)/binsPerCell - 0.5
	c := math.Floor(u)
	return (int(c) + tileCells) % tileCells, u - c
}

// cyclicHighPass subtracts the cyclic local mean over (2r+1)² bins from an n×n tile.
func cyclicHighPass(t []float64, n, r int) []float64 {
	out := make([]float64, len(t))
	if r <= 0 {
		copy(out, t)
		return out
	}
	tmp := make([]float64, len(t))
	inv := 1 / float64(2*r+1)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			s := 0.0
			for dx := -r; dx <= r; dx++ {
				s += t[y*n+((x+dx)%n+n)%n]
			}
			tmp[y*n+x] = s * inv
		}
	}
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			s := 0.0
			for dy := -r; dy <= r; dy++ {
				s += tmp[(((y+dy)%n+n)%n)*n+x]
			}
			out[y*n+x] = t[y*n+x] - s*inv
		}
	}
	return out
}

// dihedral returns the permutation that maps bin index i of a tile to its place after
// orientation d (bit 2: transpose, bit 0: flip columns, bit 1: flip rows).
func dihedral(d, n int) []int {
	p := make([]int, n*n)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			xx, yy := x, y
			if d&4 != 0 {
				xx, yy = yy, xx
			}
			if d&1 != 0 {
				xx = n - 1 - xx
			}
			if d&2 != 0 {
				yy = n - 1 - yy
			}
			p[y*n+x] = yy*n + xx
		}
	}
	return p
}

// orientationNames names the orientation d in which the marked image was found, as the
// operation that was applied to the original.
var orientationNames = [8]string{
	"identity", "flip-horizontal", "flip-vertical", "rotate-180",
	"transpose", "rotate-90", "rotate-270", "anti-transpose",
}

// median32 is the median of v, from an evenly strided sample of at most 4096 values (it sets
// scales, where that precision is plenty).
func median32(v []float32) float32 {
	if len(v) == 0 {
		return 0
	}
	step := max(1, len(v)/4096)
	c := make([]float32, 0, len(v)/step+1)
	for i := 0; i < len(v); i += step {
		c = append(c, v[i])
	}
	slices.Sort(c)
	return c[len(c)/2]
}
