package models

import (
	"errors"
	"regexp"
	"strings"

	gomysql "github.com/go-sql-driver/mysql"
)

// LogText is an error's text for the server's log, without the values MySQL
// quotes in its messages: "Duplicate entry 'ann@example.com-7' for key …",
// "Incorrect string value: '…' for column …", a syntax error's "near '…'"
// (statements are sent with their values in them). Those values are what
// visitors and users sent — emails, names, properties — and a log line is
// out of reach of erasure and retention. Names of keys, columns and tables
// stay; SQLite's messages name columns only and pass as they are.
func LogText(err error) string {
	text := err.Error()
	var me *gomysql.MySQLError
	if !errors.As(err, &me) || me.Message == "" {
		return text
	}
	return strings.Replace(text, me.Message, redactQuoted(me.Message), 1)
}

var mysqlQuoted = regexp.MustCompile(`'(?:[^'\\]|\\.|'')*'`)

func redactQuoted(msg string) string {
	var b strings.Builder
	last := 0
	for _, m := range mysqlQuoted.FindAllStringIndex(msg, -1) {
		before := msg[:m[0]]
		b.WriteString(msg[last:m[0]])
		if strings.HasSuffix(before, "key ") || strings.HasSuffix(before, "column ") || strings.HasSuffix(before, "table ") {
			b.WriteString(msg[m[0]:m[1]])
		} else {
			b.WriteString("'…'")
		}
		last = m[1]
	}
	b.WriteString(msg[last:])
	return b.String()
}
