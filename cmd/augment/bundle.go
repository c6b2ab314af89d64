package main

import (
	"fmt"
	"os"

	"github.com/medaugment/augment/unclip"
	"github.com/spf13/cobra"
)

func (a *app) bundleCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Inspect and verify unCLIP model bundles",
		Example: `  augment bundle info unclip/bundles/cxr-tiny
  augment bundle verify --json testdata/bundles/tiny`,
	}
	cmd.AddCommand(a.bundleInfoCommand(), a.bundleVerifyCommand())
	return cmd
}

type bundleInfo struct {
	Dir        string              `json:"dir"`
	Name       string              `json:"name"`
	Format     int                 `json:"format_version"`
	License    string              `json:"license"`
	ModelCard  string              `json:"model_card,omitempty"`
	EmbedDim   int                 `json:"embed_dim"`
	ImageSize  int                 `json:"image_size"`
	Channels   int                 `json:"channels"`
	Context    int                 `json:"context_length"`
	Components []bundleComponentJS `json:"components"`
}

type bundleComponentJS struct {
	Role             string  `json:"role"`
	File             string  `json:"file"`
	Schedule         string  `json:"schedule,omitempty"`
	Parameterization string  `json:"parameterization,omitempty"`
	Steps            int     `json:"sampling_steps,omitempty"`
	Guidance         float64 `json:"guidance_scale,omitempty"`
	Size             string  `json:"size,omitempty"`
}

func (a *app) bundleInfoCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "info DIR",
		Short:   "Print a bundle's manifest summary (name, licence, components, sampling defaults)",
		Example: "  augment bundle info testdata/bundles/tiny\n  augment bundle info --json unclip/bundles/cxr-tiny",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := unclip.ReadManifest(os.DirFS(args[0]), args[0])
			if err != nil {
				return usageError("%v", err)
			}
			info := bundleInfo{Dir: args[0], Name: m.Name, Format: m.FormatVersion, License: m.License, ModelCard: m.ModelCard,
				EmbedDim: m.CLIP.EmbedDim, ImageSize: m.Image.Size, Channels: m.Image.Channels, Context: m.Tokenizer.ContextLength}
			add := func(role string, c *unclip.Component) {
				if c == nil {
					return
				}
				js := bundleComponentJS{Role: role, File: c.File}
				if d := c.Diffusion; d != nil {
					js.Schedule, js.Parameterization, js.Steps, js.Guidance = d.Schedule, d.Parameterization, d.SamplingSteps, d.GuidanceScale
				}
				if c.OutSize > 0 {
					js.Size = fmt.Sprintf("%d→%d", c.InSize, c.OutSize)
				}
				info.Components = append(info.Components, js)
			}
			cs := m.Components
			add("clip_text", cs.CLIPText)
			add("clip_image", cs.CLIPImage)
			add("prior", cs.Prior)
			add("ar_prior", cs.ARPrior)
			add("decoder", cs.Decoder)
			for i := range cs.Upsamplers {
				add(fmt.Sprintf("upsampler %d", i), &cs.Upsamplers[i])
			}
			if a.jsonOut {
				return a.printJSON(info)
			}
			w := a.stdout
			fmt.Fprintf(w, "bundle    %s (format %d)\nlicence   %s\n", info.Name, info.Format, info.License)
			if info.ModelCard != "" {
				fmt.Fprintf(w, "card      %s\n", info.ModelCard)
			}
			fmt.Fprintf(w, "image     %d×%d, %d channel(s); CLIP width %d; context %d tokens\n", info.ImageSize, info.ImageSize, info.Channels, info.EmbedDim, info.Context)
			for _, c := range info.Components {
				fmt.Fprintf(w, "  %-11s %-22s", c.Role, c.File)
				if c.Schedule != "" {
					fmt.Fprintf(w, " %s/%s, %d steps, guidance %g", c.Schedule, c.Parameterization, c.Steps, c.Guidance)
				}
				if c.Size != "" {
					fmt.Fprintf(w, ", %s px", c.Size)
				}
				fmt.Fprintln(w)
			}
			return nil
		},
	}
}

func (a *app) bundleVerifyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "verify DIR",
		Short: "Check the SHA-256 of every file a bundle's manifest names (exit 1 when one fails)",
		Example: `  augment bundle verify testdata/bundles/tiny
  augment bundle verify --json unclip/bundles/cxr-tiny | jq '.files[] | select(.ok | not)'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fsys := os.DirFS(args[0])
			m, err := unclip.ReadManifest(fsys, args[0])
			if err != nil {
				return usageError("%v", err)
			}
			files := m.FileList()
			bar := a.newProgress(len(files), "verifying")
			statuses := m.CheckFiles(fsys)
			bar.Add(len(files))
			bad := 0
			for _, s := range statuses {
				if !s.OK {
					bad++
				}
			}
			if a.jsonOut {
				if err := a.printJSON(map[string]any{"dir": args[0], "name": m.Name, "ok": bad == 0, "files": statuses}); err != nil {
					return err
				}
			} else if !a.quiet || bad > 0 {
				for _, s := range statuses {
					if s.OK {
						if !a.quiet {
							fmt.Fprintf(a.stdout, "ok    %s\n", s.Name)
						}
					} else {
						fmt.Fprintf(a.stdout, "FAIL  %s: %s\n", s.Name, s.Problem)
					}
				}
			}
			if bad > 0 {
				return failCheck("bundle %s: %d of %d files failed verification", args[0], bad, len(statuses))
			}
			if !a.jsonOut && !a.quiet {
				fmt.Fprintf(a.stdout, "bundle %s verified: %d files\n", m.Name, len(statuses))
			}
			return nil
		},
	}
}
