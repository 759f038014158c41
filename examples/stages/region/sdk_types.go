// The types of WIT package newsroom:stage@0.1.0 (wit/newsroom-stage.wit), as Go types.
// Generic glue, the same for every Go stage: copy sdk_*.go as they are.
package main

// Story is the story as ingest accepted it.
type Story struct {
	ID       string
	Version  uint32
	Headline string
	Body     string
	Language string
	Source   string
	Urgency  uint32
	Keywords []string
}

// Topic is a topic an earlier stage found.
type Topic struct {
	Code  string
	Label string
	Score float64
}

// Entity is an entity an earlier stage found; Kind: "person", "organisation", "place",
// "event" or "other".
type Entity struct {
	Name     string
	Kind     string
	Salience float64
}

// Enrichment is what earlier stages found.
type Enrichment struct {
	Language      string
	Topics        []Topic
	Entities      []Entity
	Summary       string
	WordCount     uint32
	BreakingScore float64
	Attributes    [][2]string // "<stage>.<name>" -> value
}

// Input is the host's call: the story, what earlier stages found, the stage's config (params)
// and the time in ms since the epoch.
type Input struct {
	Story      Story
	Enrichment Enrichment
	Config     [][2]string
	NowMs      int64
}

// Param is the config value for key, or def when the pipeline sets none.
func (in *Input) Param(key, def string) string {
	for _, kv := range in.Config {
		if kv[0] == key {
			return kv[1]
		}
	}
	return def
}

// Field is one finding this stage writes: attribute "<stage>.<name>".
type Field struct{ Name, Value string }

// Manifest describes the stage.
type Manifest struct {
	Name    string
	Version string
	Reads   []string
	Writes  []string
}

// Level is a log level of the host's log.
type Level uint32

const (
	Debug Level = iota
	Info
	Warn
	Error
)
