// Newsroom enrichment stage "{{name}}" (Go).
//
// Built with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared, then made a component of world
// newsroom:stage/stage@0.1.0 (see build.sh). sdk_*.go is the generic canonical-ABI glue: leave
// it as it is. Return an error to fail the story in this stage (Err); a panic also becomes Err.
// There is no WASI: fmt.Print* output is dropped, time.Now() is not the wall clock (use
// in.NowMs), files cannot be opened. Use Log, CacheGet and CacheSet for the host's services.
package main

import "strconv"

func manifest() Manifest {
	return Manifest{Name: "{{name}}", Version: "0.1.0", Reads: []string{"story"}, Writes: []string{"words"}}
}

func run(in *Input) ([]Field, error) {
	n := wordCount(in.Story.Body)
	Log(Debug, strconv.Itoa(n)+" words")
	words := Field{Name: "words", Value: strconv.Itoa(n)}
	return []Field{words}, nil
}

func main() {} // a reactor: the host calls the exports, never main
