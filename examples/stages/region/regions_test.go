package main

import (
	"reflect"
	"testing"
)

func TestEntitiesAndBody(t *testing.T) {
	got := Tag(
		[]Entity{{"Kyiv", "place", 0.9}, {"Emmanuel Macron", "person", 0.8}, {"Washington", "place", 0.2}},
		"Talks in Kyiv",
		"Officials from Paris and Washington met in Kyiv.\n\nLondon was not invited.",
	)
	want := Result{Regions: []string{"Americas", "Europe", "UK"}, Primary: "Europe"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestWholeWordsAndLongestName(t *testing.T) {
	// "New York" is one Americas mention; "Yorkshire", "Parisian" and "USB" are not places.
	got := Tag(nil, "", "A Parisian in New York bought a USB stick in Yorkshire.")
	want := Result{Regions: []string{"Americas"}, Primary: "Americas"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestEntityLookup(t *testing.T) {
	got := Tag([]Entity{{"kyiv, ukraine", "place", 0}, {"Lagos", "other", 1}}, "", "")
	want := Result{Regions: []string{"Europe"}, Primary: "Europe"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestNothing(t *testing.T) {
	got := Tag(nil, "Local council meets", "The council met on Tuesday.")
	if len(got.Regions) != 0 || got.Primary != "" {
		t.Fatalf("got %+v", got)
	}
}

func TestTieGoesToFirstName(t *testing.T) {
	got := Tag(nil, "", "Tokyo and Cairo")
	if got.Primary != "Asia-Pacific" || !reflect.DeepEqual(got.Regions, []string{"Asia-Pacific", "Middle East"}) {
		t.Fatalf("got %+v", got)
	}
}
