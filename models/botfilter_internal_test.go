package models

import "testing"

func TestBotFilterMatch(t *testing.T) {
	for _, c := range []struct {
		ua                 string
		crawlers, headless bool
	}{
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", true, true},
		{"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", true, true},
		{"Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", true, true},
		{"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", true, true},
		{"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", true, true},
		{"Mozilla/5.0 (compatible; YandexBot/3.0)", true, true},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", false, true},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", false, false},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", false, false},
		{"Mozilla/5.0 (Linux; Android 10; CUBOT_X50) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36", false, false},
		{"Mozilla/5.0 (Linux; Android 12; Robotics Tab) Chrome/120.0.0.0", false, false},
		{"", false, false},
	} {
		if got := BotFilterCrawlers.Match(c.ua); got != c.crawlers {
			t.Errorf("crawlers %q: %v", c.ua, got)
		}
		if got := BotFilterAll.Match(c.ua); got != c.headless {
			t.Errorf("all %q: %v", c.ua, got)
		}
		if BotFilterOff.Match(c.ua) {
			t.Errorf("off %q matched", c.ua)
		}
	}
}

func TestCleanOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"HTTPS://Shop.Example":               "https://shop.example",
		"https://a\x01b\x7f.example\xff":     "https://ab.example",
		" https://x.example ":                "https://x.example",
		"https://" + string(make([]byte, 0)): "https://",
		"https://" + repeat("é", 60):         "https://" + repeat("é", 46),
	} {
		if got := cleanOrigin(in); got != want {
			t.Errorf("cleanOrigin(%q) = %q, want %q", in, got, want)
		}
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}
