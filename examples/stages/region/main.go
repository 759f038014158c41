// Newsroom enrichment stage "region": tags a story's regions (Europe, Middle East, Africa,
// Asia-Pacific, Americas, UK) from its place entities and its text.
//
// Built with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared (a WASI preview1 reactor), then made a
// component of world newsroom:stage/stage@0.1.0 (see build.sh). The canonical-ABI glue is in
// abi_wasm.go; the logic in regions.go.
package main

import "strings"

const stageName = "region"

func manifest() Manifest {
	return Manifest{
		Name:    stageName,
		Version: "0.1.0",
		Reads:   []string{"story", "entities"},
		Writes:  []string{"regions", "primary"},
	}
}

// run is the stage: the fields it writes, or an error (Err: the story fails in this stage).
func run(in *Input) ([]Field, error) {
	res := Tag(in.Enrichment.Entities, in.Story.Headline, in.Story.Body)
	if res.Primary == "" {
		Log(Debug, "no known place in story "+in.Story.ID)
	}
	return []Field{
		{"regions", strings.Join(res.Regions, ",")},
		{"primary", res.Primary},
	}, nil
}

func main() {} // a reactor: the host calls the exports, never main
