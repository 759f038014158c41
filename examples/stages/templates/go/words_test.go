package main

import "testing"

func TestWordCount(t *testing.T) {
	for text, want := range map[string]int{"": 0, "One two\n\nthree  four.": 4} {
		if got := wordCount(text); got != want {
			t.Errorf("wordCount(%q) = %d, want %d", text, got, want)
		}
	}
}
