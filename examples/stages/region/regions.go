// Plain logic of the "region" stage: no wasm-only code here, so `go test` runs it natively.
package main

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The regions a story can be tagged with.
const (
	Europe      = "Europe"
	MiddleEast  = "Middle East"
	Africa      = "Africa"
	AsiaPacific = "Asia-Pacific"
	Americas    = "Americas"
	UK          = "UK"
)

// places maps a place name (as written, case-sensitive; multi-word names allowed) to its
// region. Small on purpose: an example, not a gazetteer. Ambiguous names (Georgia, Jordan as a
// first name, Turkey the bird...) are matched in the body only when capitalised, like all names.
var places = map[string]string{}

// byLength is the place names, longest first (ties in name order): the order mentions tries them.
var byLength []string

func init() {
	add := func(region string, names ...string) {
		for _, n := range names {
			places[n] = region
		}
	}
	add(UK, "UK", "U.K.", "United Kingdom", "Britain", "Great Britain", "England", "Scotland", "Wales",
		"Northern Ireland", "London", "Manchester", "Birmingham", "Glasgow", "Edinburgh", "Cardiff",
		"Belfast", "Liverpool", "Leeds", "Bristol", "Westminster", "Downing Street")
	add(Europe, "Europe", "European Union", "EU", "France", "Paris", "Germany", "Berlin", "Munich",
		"Frankfurt", "Italy", "Rome", "Milan", "Spain", "Madrid", "Barcelona", "Portugal", "Lisbon",
		"Ireland", "Dublin", "Netherlands", "Amsterdam", "The Hague", "Belgium", "Brussels",
		"Switzerland", "Geneva", "Zurich", "Austria", "Vienna", "Poland", "Warsaw", "Ukraine", "Kyiv",
		"Kiev", "Russia", "Moscow", "Sweden", "Stockholm", "Norway", "Oslo", "Denmark", "Copenhagen",
		"Finland", "Helsinki", "Greece", "Athens", "Hungary", "Budapest", "Czech Republic", "Prague",
		"Romania", "Bucharest", "Serbia", "Belgrade", "Strasbourg", "Luxembourg")
	add(MiddleEast, "Middle East", "Israel", "Jerusalem", "Tel Aviv", "Gaza", "West Bank",
		"Palestinian Territories", "Lebanon", "Beirut", "Syria", "Damascus", "Iraq", "Baghdad", "Iran",
		"Tehran", "Saudi Arabia", "Riyadh", "Yemen", "Sanaa", "United Arab Emirates", "UAE", "Dubai",
		"Abu Dhabi", "Qatar", "Doha", "Kuwait", "Oman", "Bahrain", "Turkey", "Ankara", "Istanbul",
		"Egypt", "Cairo")
	add(Africa, "Africa", "Nigeria", "Lagos", "Abuja", "Kenya", "Nairobi", "South Africa",
		"Johannesburg", "Cape Town", "Pretoria", "Ethiopia", "Addis Ababa", "Ghana", "Accra",
		"Morocco", "Rabat", "Algeria", "Tunisia", "Libya", "Tripoli", "Sudan", "Khartoum", "Somalia",
		"Mogadishu", "Uganda", "Kampala", "Tanzania", "Rwanda", "Kigali", "Congo", "Kinshasa",
		"Senegal", "Dakar", "Mali", "Zimbabwe", "Harare", "Sahel")
	add(AsiaPacific, "Asia", "Asia-Pacific", "China", "Beijing", "Shanghai", "Hong Kong", "Taiwan",
		"Taipei", "Japan", "Tokyo", "Osaka", "South Korea", "North Korea", "Seoul", "Pyongyang",
		"India", "New Delhi", "Delhi", "Mumbai", "Pakistan", "Islamabad", "Karachi", "Afghanistan",
		"Kabul", "Bangladesh", "Dhaka", "Indonesia", "Jakarta", "Malaysia", "Kuala Lumpur",
		"Singapore", "Thailand", "Bangkok", "Vietnam", "Hanoi", "Philippines", "Manila", "Myanmar",
		"Australia", "Sydney", "Melbourne", "Canberra", "New Zealand", "Wellington", "Auckland")
	add(Americas, "Americas", "United States", "U.S.", "US", "USA", "America", "Washington",
		"White House", "New York", "Los Angeles", "Chicago", "San Francisco", "Texas", "California",
		"Florida", "Canada", "Ottawa", "Toronto", "Montreal", "Vancouver", "Mexico", "Mexico City",
		"Brazil", "Brasilia", "Sao Paulo", "São Paulo", "Rio de Janeiro", "Argentina", "Buenos Aires",
		"Chile", "Santiago", "Colombia", "Bogota", "Peru", "Lima", "Venezuela", "Caracas", "Cuba",
		"Havana", "Latin America")
	for p := range places {
		byLength = append(byLength, p)
	}
	sort.Slice(byLength, func(i, j int) bool {
		if len(byLength[i]) != len(byLength[j]) {
			return len(byLength[i]) > len(byLength[j])
		}
		return byLength[i] < byLength[j]
	})
}

// Result is what the stage writes.
type Result struct {
	Regions []string // sorted
	Primary string   // the region with the highest score; "" when none
}

// Weights of the evidence: a place entity counts 1 + its salience, a mention in the headline
// 1, a mention in the body 0.5.
const (
	entityWeight   = 1.0
	headlineWeight = 1.0
	bodyWeight     = 0.5
)

// Tag finds the story's regions from its place entities, its headline and its body.
func Tag(entities []Entity, headline, body string) Result {
	score := map[string]float64{}
	for _, e := range entities {
		if e.Kind != "place" {
			continue
		}
		if r, ok := lookup(e.Name); ok {
			score[r] += entityWeight + e.Salience
		}
	}
	for r, n := range mentions(headline) {
		score[r] += headlineWeight * float64(n)
	}
	for r, n := range mentions(body) {
		score[r] += bodyWeight * float64(n)
	}
	res := Result{}
	for r := range score {
		res.Regions = append(res.Regions, r)
	}
	sort.Strings(res.Regions)
	best := 0.0
	for _, r := range res.Regions { // sorted, so ties go to the first name
		if score[r] > best {
			best, res.Primary = score[r], r
		}
	}
	return res
}

// lookup maps an entity name to a region: exact, then case-insensitive, then by its last
// comma-separated part ("Kyiv, Ukraine").
func lookup(name string) (string, bool) {
	name = strings.TrimSpace(name)
	if r, ok := places[name]; ok {
		return r, true
	}
	for p, r := range places {
		if strings.EqualFold(p, name) {
			return r, true
		}
	}
	if i := strings.LastIndexByte(name, ','); i >= 0 {
		return lookup(name[i+1:])
	}
	return "", false
}

// mentions counts, per region, the place names that occur in text as whole words. Longer names
// win over the names inside them ("New York" is not also "York"; "South Africa" counts once).
func mentions(text string) map[string]int {
	counts := map[string]int{}
	if text == "" {
		return counts
	}
	used := make([]bool, len(text))
	for _, p := range byLength {
		for start := 0; ; {
			i := strings.Index(text[start:], p)
			if i < 0 {
				break
			}
			i += start
			j := i + len(p)
			start = i + 1
			if !boundary(text, i, j) || anyUsed(used[i:j]) {
				continue
			}
			for k := i; k < j; k++ {
				used[k] = true
			}
			counts[places[p]]++
		}
	}
	return counts
}

func anyUsed(b []bool) bool {
	for _, u := range b {
		if u {
			return true
		}
	}
	return false
}

// boundary reports whether text[i:j] stands as whole words.
func boundary(text string, i, j int) bool {
	if i > 0 {
		r, _ := utf8.DecodeLastRuneInString(text[:i])
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return false
		}
	}
	if j < len(text) {
		r, _ := utf8.DecodeRuneInString(text[j:])
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return false
		}
	}
	return true
}
