package docstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The limits of to_tsvector, compiled into PostgreSQL (tsearch/ts_type.h, ts_utils.h).
const (
	// tsvMaxWord is the longest token to_tsvector keeps, in bytes, in older minor releases
	// (MAXSTRLEN - 1): a longer one is dropped with a notice, and takes no position. Later
	// minor releases keep tokens of one byte more (MAXSTRLEN); [Open] asks the database which.
	tsvMaxWord = 2046
	// tsvMaxPos is the largest position (MAXENTRYPOS - 1): later tokens all take it.
	tsvMaxPos = 16383
	// tsvMaxPositions is how many positions a lexeme keeps (MAXNUMPOS - 1): its first ones.
	tsvMaxPositions = 255
	// tsvMaxContent is the longest content plainTSVector handles; longer goes to PostgreSQL.
	tsvMaxContent = 64 << 10
)

// Byte classes of plain text (see plainTSVector).
const (
	tcOther  = iota // anything else: the text is not plain
	tcLetter        // A-Z a-z
	tcDigit         // 0-9
	tcSpace         // the ASCII white space of isspace()
	tcPunct         // punctuation the default parser treats as a separator wherever it stands
	tcDot
	tcHyphen
	tcPlus
	tcTilde
	tcUnderscore
)

var tsvClass = func() (t [256]byte) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = tcLetter, tcLetter
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = tcDigit
	}
	for _, c := range " \t\n\v\f\r" {
		t[c] = tcSpace
	}
	for _, c := range "!\"#$%'()*,:;=>?[]^`{|}" {
		t[c] = tcPunct
	}
	t['.'], t['-'], t['+'], t['~'], t['_'] = tcDot, tcHyphen, tcPlus, tcTilde, tcUnderscore
	return t
}()

func isAlnum(c byte) bool { k := tsvClass[c]; return k == tcLetter || k == tcDigit }

// tsvParser is how the database's to_tsvector('simple', ...) reads plain text.
type tsvParser struct {
	// typographic: the punctuation of typographicSeparator separates words (glibc's UTF-8
	// locales); in the C locale every non-ASCII character is a letter.
	typographic bool
	// maxWord is the longest token kept, in bytes: tsvMaxWord or tsvMaxWord+1.
	maxWord int
}

// tsvToken is a token of the text: its lexeme, lower[start:end], and its position.
type tsvToken struct {
	start, end, pos int32
}

// plainTSVector returns the text form of to_tsvector('simple', content) as PostgreSQL's
// default parser and simple dictionary produce it where ASCII is classified and lower-cased as
// in the C locale, or ok = false when content is not plain text, which it leaves to
// PostgreSQL. With p.typographic, the punctuation of typographicSeparator counts as a
// separator too, as in the UTF-8 locales of glibc (in the C locale every non-ASCII character
// is a letter).
//
// Plain text is ASCII letters and digits, white space, the punctuation of tcPunct, '.', '-',
// '+', '~' and '_', where none of these stands where the parser reads more than words:
//   - a run of letters and digits is a word (asciiword, numword, uint): one token;
//   - runs of letters joined by single hyphens ("state-of-the-art") are a hyphenated word: the
//     whole (asciihword) then each part (hword_asciipart), one token each;
//   - digits and dots with digits at both ends ("3.14", "4.3.2") are a decimal or version
//     number, and single letters joined by dots ("e.g.", "U.S.A.") a file name: one token,
//     without the final dot;
//   - not plain: a hyphen joining a run that holds a digit ("covid-19", "x1-y"), '-' or '+'
//     before a digit (signed numbers, ranges), digits then 'e' and a digit (scientific
//     notation), any other '.' between a letter or digit and a letter, digit or '_' (hosts,
//     file names, "v1.2"), a number or abbreviation running on into a letter, '-' or '_',
//     exactly two dots before white space, non-ASCII or the end (a path ".."), '~' before a
//     letter, digit or '_' (a path "~x"), and every byte outside the classes above: '/', '@',
//     '<', '&', '\', control characters, other non-ASCII.
//
// It mirrors to_tsvector's limits: tokens longer than p.maxWord bytes are dropped without
// taking a position, positions stop at 16383 and a lexeme keeps its first 255 distinct
// positions.
func plainTSVector(content string, p tsvParser) (string, bool) {
	n := len(content)
	if n > tsvMaxContent {
		return "", false
	}
	lower := []byte(content)
	tokens := make([]tsvToken, 0, n/5+1)
	pos := int32(0)
	emit := func(start, end int) {
		if end-start > p.maxWord {
			return
		}
		pos++
		tokens = append(tokens, tsvToken{start: int32(start), end: int32(end), pos: min(pos, tsvMaxPos)})
	}
	// run lower-cases the run of letters and digits at *i, moves *i past it and reports what
	// it holds.
	run := func(i *int) (letters, digits bool) {
		for ; *i < n; *i++ {
			switch tsvClass[content[*i]] {
			case tcLetter:
				lower[*i] |= 0x20
				letters = true
			case tcDigit:
				digits = true
			default:
				return letters, digits
			}
		}
		return letters, digits
	}
	var parts [][2]int
	for i := 0; i < n; {
		switch tsvClass[content[i]] {
		case tcLetter, tcDigit:
			start := i
			letters, digits := run(&i)
			if !letters && i+1 < n && content[i] == '.' && tsvClass[content[i+1]] == tcDigit {
				// Digits and dots, digits at both ends: a decimal or version number.
				for i+1 < n && content[i] == '.' && tsvClass[content[i+1]] == tcDigit {
					i++
					if letters, _ = run(&i); letters {
						return "", false
					}
				}
				if i+1 < n && content[i] == '-' && isAlnum(content[i+1]) {
					return "", false
				}
				emit(start, i)
				continue
			}
			if letters && !digits && i-start == 1 && abbreviation(content, i) {
				// Single letters joined by dots ("e.g.", "U.S.A."): a file name token.
				for abbreviation(content, i) {
					lower[i+1] |= 0x20
					i += 2
				}
				if i < n && (content[i] == '-' || content[i] == '_') {
					return "", false
				}
				emit(start, i)
				continue
			}
			// A word, or letter runs joined by hyphens.
			parts = parts[:0]
			for runStart := start; ; {
				joined := i+1 < n && content[i] == '-' && isAlnum(content[i+1])
				if digits && (len(parts) > 0 || joined || exponent(content[runStart:i])) {
					return "", false
				}
				parts = append(parts, [2]int{runStart, i})
				if !joined {
					break
				}
				i++ // the hyphen
				runStart = i
				_, digits = run(&i)
			}
			if len(parts) > 1 {
				emit(start, i)
			}
			for _, p := range parts {
				emit(p[0], p[1])
			}
			continue
		case tcSpace, tcPunct, tcUnderscore:
		case tcDot:
			if i > 0 && isAlnum(content[i-1]) && i+1 < n && (isAlnum(content[i+1]) || content[i+1] == '_') {
				return "", false
			}
			if i+1 < n && content[i+1] == '.' && (i == 0 || content[i-1] != '.') &&
				(i+2 == n || tsvClass[content[i+2]] == tcSpace || content[i+2] >= utf8.RuneSelf) {
				return "", false
			}
		case tcHyphen, tcPlus:
			if i+1 < n && tsvClass[content[i+1]] == tcDigit {
				return "", false
			}
		case tcTilde:
			if i+1 < n && (isAlnum(content[i+1]) || content[i+1] == '_') {
				return "", false
			}
		default:
			if !p.typographic {
				return "", false
			}
			r, size := utf8.DecodeRuneInString(content[i:])
			if !typographicSeparator(r) {
				return "", false
			}
			i += size
			continue
		}
		i++
	}
	return formatTSVector(lower, tokens), true
}

// typographicSeparator reports whether r is punctuation of typeset text (quotes, dashes,
// bullets, signs) that glibc's UTF-8 locales class as neither letter, digit nor space, and the
// default parser therefore as a separator.
func typographicSeparator(r rune) bool {
	switch r {
	case '\u00a0', '§', '©', '«', '®', '°', '±', '¶', '»', '×', '–', '—', '‘', '’', '“', '”', '†', '‡',
		'•', '…', '′', '″', '™', '→':
		return true
	}
	return false
}

// abbreviation reports whether text[i:] starts with a dot and a single letter.
func abbreviation(text string, i int) bool {
	return i+1 < len(text) && text[i] == '.' && tsvClass[text[i+1]] == tcLetter && (i+2 == len(text) || !isAlnum(text[i+2]))
}

// exponent reports whether run (letters and digits) is digits, then 'e' or 'E' and a digit:
// the parser reads scientific notation there.
func exponent(run string) bool {
	i := 0
	for i < len(run) && tsvClass[run[i]] == tcDigit {
		i++
	}
	return i > 0 && i+1 < len(run) && (run[i] == 'e' || run[i] == 'E') && tsvClass[run[i+1]] == tcDigit
}

// formatTSVector writes tokens of text, in position order, as tsvector's text output:
// lexemes in bytewise order, each quoted (plain lexemes hold no quote or backslash to
// escape), with its positions ascending ('a':1,3 'b':2). A position repeats only at the cap
// tsvMaxPos, and is kept once; a lexeme keeps its first tsvMaxPositions.
func formatTSVector(text []byte, tokens []tsvToken) string {
	// Sort keys: a token's first five bytes, zero-padded (which orders words as a bytewise
	// comparison does, as they hold no zero byte), then its index, which is position order.
	const indexBits = 24 // tokens of at most tsvMaxContent bytes
	keys := make([]uint64, len(tokens))
	for k, t := range tokens {
		var prefix uint64
		for i := t.start; i < t.end && i < t.start+5; i++ {
			prefix |= uint64(text[i]) << (32 - 8*(i-t.start))
		}
		keys[k] = prefix<<indexBits | uint64(k)
	}
	slices.Sort(keys)
	word := func(key uint64) []byte {
		t := tokens[key&(1<<indexBits-1)]
		return text[t.start:t.end]
	}
	// Among tokens whose first five bytes agree, order distinct words by their whole bytes,
	// each word's tokens staying in position order.
	for i := 0; i < len(keys); {
		j := i + 1
		for j < len(keys) && keys[j]>>indexBits == keys[i]>>indexBits {
			j++
		}
		if w := word(keys[i]); slices.ContainsFunc(keys[i+1:j], func(k uint64) bool { return !bytes.Equal(word(k), w) }) {
			slices.SortStableFunc(keys[i:j], func(a, b uint64) int { return bytes.Compare(word(a), word(b)) })
		}
		i = j
	}
	var b strings.Builder
	b.Grow(len(text) + len(tokens)*6)
	var num [8]byte
	for i := 0; i < len(keys); {
		w, t := word(keys[i]), tokens[keys[i]&(1<<indexBits-1)]
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('\'')
		b.Write(w)
		b.WriteString("':")
		b.Write(strconv.AppendInt(num[:0], int64(t.pos), 10))
		last, count := t.pos, 1
		for i++; i < len(keys) && keys[i]>>indexBits == keys[i-1]>>indexBits && bytes.Equal(word(keys[i]), w); i++ {
			if p := tokens[keys[i]&(1<<indexBits-1)].pos; count < tsvMaxPositions && last != tsvMaxPos && p != last {
				b.WriteByte(',')
				b.Write(strconv.AppendInt(num[:0], int64(p), 10))
				last, count = p, count+1
			}
		}
	}
	return b.String()
}

// tsvProbe is the text on which [Open] compares plainTSVector with the database: every ASCII
// letter in both cases, digits, every separator plainTSVector accepts, hyphenated words,
// apostrophes, numbers, abbreviations and the limits (a lexeme's 255 positions, the longest
// token kept, positions past 16383).
func tsvProbe(maxWord int) string {
	var b strings.Builder
	for c := 'A'; c <= 'Z'; c++ {
		fmt.Fprintf(&b, "%c %c %c%c ", c, c+'a'-'A', c, c+'a'-'A')
	}
	b.WriteString("ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz 0123456789 x86 B2B 007 ")
	b.WriteString("The Quick-Brown fox's state-of-the-art JUMPS over the lazy dog; don't stop. " +
		"Wait... really? Yes! (Twice.) a--b c++ x+y -lead tail- ~ x~ snake_case _under over_ " +
		"Version 4.3.2, see 3.14. E.g. this, i.e. that, U.S.A. ")
	for _, c := range " \t\n\v\f\r!\"#$%'()*,:;=>?[]^`{|}_+" {
		fmt.Fprintf(&b, "a%cb ", c)
	}
	b.WriteString(strings.Repeat("w ", 300))
	fmt.Fprintf(&b, "%s %s %s-%s ", strings.Repeat("k", maxWord), strings.Repeat("m", maxWord+1),
		strings.Repeat("h", 1500), strings.Repeat("j", 600))
	b.WriteString(strings.Repeat("p q ", tsvMaxPos/2+10))
	b.WriteString("Quick-Brown the w end.")
	return b.String()
}

// tsvTypographicProbe is the text on which [Open] checks that the database parses the
// punctuation of typographicSeparator as plainTSVector does with typographic set.
func tsvTypographicProbe() string {
	var b strings.Builder
	for r := rune(0x80); r < 0x2200; r++ {
		if typographicSeparator(r) {
			fmt.Fprintf(&b, "a%cb %c x%cy%c Z ", r, r, r, r)
		}
	}
	b.WriteString("Don\u2019t \u201cquote\u201d well-known\u2014state-of-the-art \u2013 3.14\u201d e.g.\u2019 end.\u2019 x\u2026 ")
	return b.String()
}

// checkTSVector compares plainTSVector with the database's to_tsvector('simple', ...) on
// tsvProbe and, in a UTF-8 database, tsvTypographicProbe, after asking the database for the
// longest token it keeps. It also requires the database's 'simple' configuration to be
// PostgreSQL's, which a probe alone could not show: the default parser and, for the token
// types of plain text, the built-in simple dictionary without options (no stop words). plain
// reports that plainTSVector with p agrees with the database.
func checkTSVector(ctx context.Context, pool *pgxpool.Pool) (p tsvParser, plain bool, err error) {
	var longer bool
	if err := pool.QueryRow(ctx, `SELECT length(to_tsvector('simple', repeat('k', $1::int))) > 0`,
		tsvMaxWord+1).Scan(&longer); err != nil {
		return p, false, fmt.Errorf("docstore: text search probe: %w", err)
	}
	p.maxWord = tsvMaxWord
	if longer {
		p.maxWord++
	}
	probe := tsvProbe(p.maxWord)
	want, ok := plainTSVector(probe, p)
	if !ok {
		return p, false, errors.New("docstore: text search probe: not plain text")
	}
	var got, encoding string
	var standard bool
	// Token types of the default parser: asciiword 1, numword 3, file 19, float 20, uint 22,
	// hword_asciipart 11, asciihword 16, version 8.
	err = pool.QueryRow(ctx, `SELECT to_tsvector('simple', $1)::text, current_setting('server_encoding'), coalesce(
		(SELECT p.prstoken = 'prsd_nexttoken'::regproc FROM pg_ts_config c JOIN pg_ts_parser p ON p.oid = c.cfgparser
			WHERE c.oid = 'simple'::regconfig)
		AND (SELECT count(*) = 8 AND bool_and(t.tmpllexize = 'dsimple_lexize'::regproc AND d.dictinitoption IS NULL)
			FROM pg_ts_config_map m JOIN pg_ts_dict d ON d.oid = m.mapdict JOIN pg_ts_template t ON t.oid = d.dicttemplate
			WHERE m.mapcfg = 'simple'::regconfig AND m.maptokentype IN (1, 3, 8, 11, 16, 19, 20, 22)), false)`,
		probe).Scan(&got, &encoding, &standard)
	if err != nil {
		return p, false, fmt.Errorf("docstore: text search probe: %w", err)
	}
	if !standard || got != want || encoding != "UTF8" {
		return p, standard && got == want, nil
	}
	probe = tsvTypographicProbe()
	typo := tsvParser{typographic: true, maxWord: p.maxWord}
	if want, ok = plainTSVector(probe, typo); !ok {
		return p, false, errors.New("docstore: typographic text search probe: not plain text")
	}
	if err := pool.QueryRow(ctx, `SELECT to_tsvector('simple', $1)::text`, probe).Scan(&got); err != nil {
		return p, false, fmt.Errorf("docstore: typographic text search probe: %w", err)
	}
	if got == want {
		p = typo
	}
	return p, true, nil
}
