package manifests

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/parquet-go/parquet-go"
)

// GenerationRow is one synthetic image of a generation run: where it was written, what made
// it, what it was conditioned on, and the watermark payload that links its pixels back to
// this row. A failed item has Error set and no output path.
type GenerationRow struct {
	RunID             string   `parquet:"run_id" json:"run_id"`
	Item              int32    `parquet:"item" json:"item"`
	Path              string   `parquet:"path" json:"path"`
	SOPInstanceUID    string   `parquet:"sop_instance_uid" json:"sop_instance_uid"`
	StudyInstanceUID  string   `parquet:"study_instance_uid" json:"study_instance_uid"`
	SeriesInstanceUID string   `parquet:"series_instance_uid" json:"series_instance_uid"`
	SOPClassUID       string   `parquet:"sop_class_uid" json:"sop_class_uid"`
	PatientID         string   `parquet:"patient_id" json:"patient_id"`
	Modality          string   `parquet:"modality" json:"modality"`
	Mode              string   `parquet:"mode" json:"mode"`
	Caption           string   `parquet:"caption" json:"caption"`
	SourceSOPUIDs     []string `parquet:"source_sop_instance_uids,list" json:"source_sop_instance_uids"`
	Sex               string   `parquet:"sex" json:"sex"`
	AgeYears          *float64 `parquet:"age_years,optional" json:"age_years"`
	ViewPosition      string   `parquet:"view_position" json:"view_position"`
	Finding           string   `parquet:"finding" json:"finding"`
	Bundle            string   `parquet:"bundle" json:"bundle"`
	BundleSHA256      string   `parquet:"bundle_sha256" json:"bundle_sha256"`
	Seed              int64    `parquet:"seed" json:"seed"`
	PriorKind         string   `parquet:"prior_kind" json:"prior_kind"`
	DecoderSteps      int32    `parquet:"decoder_steps" json:"decoder_steps"`
	DecoderGuidance   float64  `parquet:"decoder_guidance" json:"decoder_guidance"`
	Theta             float64  `parquet:"theta" json:"theta"`
	Eta               float64  `parquet:"eta" json:"eta"`
	Rows              int32    `parquet:"rows" json:"rows"`
	Columns           int32    `parquet:"columns" json:"columns"`
	BitsStored        int32    `parquet:"bits_stored" json:"bits_stored"`
	WatermarkPayload  string   `parquet:"watermark_payload_id" json:"watermark_payload_id"`
	WatermarkKeyID    string   `parquet:"watermark_key_id" json:"watermark_key_id"`
	// WatermarkVerified says whether the detector read the payload back from the written
	// pixels: false means the mark is there but too weak on this image to trace it by its
	// pixels alone (the DICOM tags and this row still do).
	WatermarkVerified bool `parquet:"watermark_verified" json:"watermark_verified"`
	// WatermarkFragile says that the mark lives in flat areas at the ends of the value range
	// (a quarter or more of the pixels at 0 or the largest value), where JPEG, blur and
	// brightness changes remove it (watermark.MarkReliance).
	WatermarkFragile bool `parquet:"watermark_fragile" json:"watermark_fragile"`
	// WatermarkPSNRFloor and WatermarkSSIMFloor are the invisibility floors the mark was held
	// at, which set its strength (watermark.Options); 0 in rows written before they were
	// recorded.
	WatermarkPSNRFloor float64   `parquet:"watermark_psnr_floor" json:"watermark_psnr_floor"`
	WatermarkSSIMFloor float64   `parquet:"watermark_ssim_floor" json:"watermark_ssim_floor"`
	ImageEmbedding     []float32 `parquet:"image_embedding,list" json:"-"`
	Error              string    `parquet:"error" json:"error"`
}

// WriteGenerations writes rows to a Parquet file at path atomically: the rows go to a
// temporary file in the same folder, which is renamed over path only when complete.
// The folder is created if needed.
func WriteGenerations(path string, rows []GenerationRow) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	w, err := NewWriter[GenerationRow](path, "manifest")
	if err != nil {
		return err
	}
	if err := w.Write(rows...); err != nil {
		w.Abort()
		return err
	}
	return w.Close()
}

// ReadGenerations reads a generation manifest.
func ReadGenerations(path string) ([]GenerationRow, error) {
	rows, err := parquet.ReadFile[GenerationRow](path)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", path, err)
	}
	return rows, nil
}

// PayloadIndex finds generation rows by the watermark payload id embedded in their pixels.
type PayloadIndex map[string]GenerationRow

// IndexPayloads reads generation manifests and indexes their written rows by payload id.
// Two rows with one payload id (which the derivation from run id and item makes
// vanishingly rare) are reported as an error naming both.
func IndexPayloads(paths ...string) (PayloadIndex, error) {
	idx := PayloadIndex{}
	for _, p := range paths {
		rows, err := ReadGenerations(p)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if r.WatermarkPayload == "" || r.Error != "" {
				continue
			}
			if old, ok := idx[r.WatermarkPayload]; ok && (old.RunID != r.RunID || old.Item != r.Item) {
				return nil, fmt.Errorf("manifest %s: payload %s names both %s item %d and %s item %d",
					p, r.WatermarkPayload, old.RunID, old.Item, r.RunID, r.Item)
			}
			idx[r.WatermarkPayload] = r
		}
	}
	return idx, nil
}

// Lookup returns the row whose image carries payload.
func (x PayloadIndex) Lookup(payload string) (GenerationRow, bool) {
	r, ok := x[payload]
	return r, ok
}
