package models

import (
	"fmt"
	"strings"
)

// BotFilter says which browser (keyless) triggers are refused by their
// User-Agent header: counted as BOT_FILTERED, never stored. Callers with the
// secret key (servers relaying for visitors) are never filtered.
type BotFilter int

const (
	// BotFilterOff stores triggers whatever their User-Agent.
	BotFilterOff BotFilter = iota
	// BotFilterCrawlers refuses agents that say they are crawlers, bots,
	// spiders or link-preview fetchers (Googlebot, bingbot, AhrefsBot,
	// facebookexternalhit, Slackbot, ...).
	BotFilterCrawlers
	// BotFilterAll also refuses headless and automated browsers
	// (HeadlessChrome, PhantomJS, Puppeteer, Playwright, Selenium, Lighthouse).
	BotFilterAll
)

// ParseBotFilter reads off, crawlers or all.
func ParseBotFilter(s string) (BotFilter, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "off", "none", "0", "false":
		return BotFilterOff, nil
	case "crawlers":
		return BotFilterCrawlers, nil
	case "all":
		return BotFilterAll, nil
	}
	return BotFilterOff, fmt.Errorf("bot filter %q: want off, crawlers or all", s)
}

func (f BotFilter) String() string {
	switch f {
	case BotFilterCrawlers:
		return "crawlers"
	case BotFilterAll:
		return "all"
	}
	return "off"
}

// crawlerTokens are substrings of the lowercased User-Agent that only
// crawlers and preview fetchers send. "bot" itself is matched as the end of
// a word (botToken), so "Googlebot/2.1" and "Slackbot-LinkExpanding" match
// while a phone such as "CUBOT" does not.
var crawlerTokens = []string{
	"crawler", "crawling", "spider", "slurp", "facebookexternalhit", "facebookcatalog",
	"mediapartners-google", "adsbot-google", "google-inspectiontool", "googleother",
	"bingpreview", "feedfetcher", "ia_archiver", "archive.org_bot", "embedly", "quora link preview",
	"whatsapp/", "skypeuripreview", "vkshare", "w3c_validator", "headless-shell",
	"semrush", "ahrefs", "mj12", "dotbot", "petalbot", "bytespider", "gptbot", "chatgpt-user",
	"ccbot", "claudebot", "perplexitybot", "amazonbot", "applebot", "yandex", "baiduspider",
	"sogou", "exabot", "seznambot", "duckduckbot", "uptimerobot", "pingdom", "statuscake",
	"site24x7", "gtmetrix", "pagespeed", "nessus", "zgrab", "masscan",
}

// headlessTokens are substrings of the lowercased User-Agent of headless and
// automated browsers.
var headlessTokens = []string{
	"headlesschrome", "phantomjs", "puppeteer", "playwright", "selenium", "webdriver",
	"lighthouse", "slimerjs", "htmlunit", "electron/", "cypress",
}

// botWordExceptions are words ending in "bot" that are not bots.
var botWordExceptions = []string{"cubot"}

// Match tells whether a trigger with this User-Agent is refused.
func (f BotFilter) Match(ua string) bool {
	if f == BotFilterOff || ua == "" {
		return false
	}
	if len(ua) > maxUserAgentBytes {
		ua = ua[:maxUserAgentBytes]
	}
	ua = strings.ToLower(ua)
	if botToken(ua) {
		return true
	}
	for _, t := range crawlerTokens {
		if strings.Contains(ua, t) {
			return true
		}
	}
	if f == BotFilterAll {
		for _, t := range headlessTokens {
			if strings.Contains(ua, t) {
				return true
			}
		}
	}
	return false
}

// botToken finds "bot" ending a word ("googlebot/2.1", "twitterbot",
// "bot;"), not inside one ("robotics" still matches nothing: "bot" there is
// followed by a letter).
func botToken(ua string) bool {
	for i := 0; ; {
		j := strings.Index(ua[i:], "bot")
		if j < 0 {
			return false
		}
		end := i + j + 3
		if end == len(ua) || !isLetter(ua[end]) {
			start := i + j
			for start > 0 && isLetter(ua[start-1]) {
				start--
			}
			if !isException(ua[start:end]) {
				return true
			}
		}
		i = end
	}
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' }

func isException(word string) bool {
	for _, e := range botWordExceptions {
		if word == e {
			return true
		}
	}
	return false
}

// errBotFiltered answers a browser trigger whose User-Agent the bot filter refuses.
var errBotFiltered error = &kindError{kind: ErrBotFiltered, msg: "this user agent is a bot; its events are counted, not stored"}
