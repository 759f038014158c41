package main

import "strings"

// wordCount is the number of whitespace-separated words in text.
func wordCount(text string) int { return len(strings.Fields(text)) }
