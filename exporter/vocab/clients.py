"""Client classes of a user agent: human, bot (declared crawler) or suspicious."""

from __future__ import annotations

import time
from collections import OrderedDict
from functools import lru_cache

from crawlerdetect import CrawlerDetect

# Automation tools and scanners: crawlerdetect recognises them as crawlers, but they are not the
# declared search-engine bots a site expects, so they count as suspicious. Plain words looked up
# in the lower-cased agent (``in``, C speed): a case-insensitive regex alternation of these costs
# about 0.1 ms per agent, which a batch of 1,000 new agents turned into a 170 ms stall.
_TOOL_WORDS = (
    "curl",
    "wget",
    "python",
    "requests",
    "aiohttp",
    "httpx",
    "go-http",
    "java",
    "okhttp",
    "libwww",
    "perl",
    "ruby",
    "php",
    "headless",
    "phantom",
    "selenium",
    "puppeteer",
    "playwright",
    "scrapy",
    "sqlmap",
    "nikto",
    "nmap",
    "masscan",
    "zgrab",
    "zmeu",
    "nuclei",
    "httpclient",
    "axios",
    "node-fetch",
)
_crawler_detect = CrawlerDetect()


# Outside text is cut before any classifier sees it, so that every classification costs a bounded
# time (docs/security.md; benchmarks/adversarial_inputs.py measures the worst cases).
USER_AGENT_MAX = 256
# Declared crawlers, by the words they use: the quick classification when the thorough one
# (crawlerdetect, about 0.1 ms per character of a new agent) is over its budget.
_BOT_WORDS = ("bot", "crawl", "spider", "slurp", "archiver", "scraper", "preview", "monitor")


def _has_any(text: str, words: tuple[str, ...]) -> bool:
    return any(word in text for word in words)


def _classify_agent(ua: str) -> str:
    if not _crawler_detect.isCrawler(ua):
        return "human"
    if _has_any(ua.lower(), _TOOL_WORDS):
        return "suspicious"
    return "bot"


def _quick_class(ua: str) -> str:
    lowered = ua.lower()
    if _has_any(lowered, _TOOL_WORDS):
        return "suspicious"
    return "bot" if _has_any(lowered, _BOT_WORDS) else "human"


def _agent(user_agent: str) -> str:
    return user_agent.strip()[:USER_AGENT_MAX]


@lru_cache(maxsize=8192)
def client_class(user_agent: str | None) -> str:
    """human, bot (declared crawler) or suspicious (no agent, automation tool, scanner)."""
    if user_agent is None:
        return "human"
    ua = _agent(user_agent)
    if len(ua) < 8:
        return "suspicious"
    return _classify_agent(ua)


class ClientClassifier:
    """``client_class`` with a budget: per batch, at most ``thorough_per_batch`` agents not seen
    before, and crawlerdetect calls until ``thorough_seconds`` are spent; the rest get the quick
    marker classification (and are not cached, so a later batch classifies them thoroughly).
    crawlerdetect's large alternation is superlinear (up to tens of milliseconds for one crafted
    256-character agent), so a batch of 1,000 new agents would otherwise block the event loop
    for seconds."""

    def __init__(
        self,
        cache_size: int = 8192,
        thorough_per_batch: int = 16,
        thorough_seconds: float = 0.02,
    ) -> None:
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._size = cache_size
        self._per_batch = thorough_per_batch
        self._budget = thorough_per_batch
        self._seconds = thorough_seconds
        self._spent = 0.0

    def new_batch(self) -> None:
        self._budget = self._per_batch
        self._spent = 0.0

    def __call__(self, user_agent: str | None) -> str:
        if user_agent is None:
            return "human"
        ua = _agent(user_agent)
        if len(ua) < 8:
            return "suspicious"
        cache = self._cache
        cls = cache.get(ua)
        if cls is not None:
            cache.move_to_end(ua)
            return cls
        if self._budget <= 0 or self._spent >= self._seconds:
            return _quick_class(ua)
        self._budget -= 1
        started = time.perf_counter()
        cls = cache[ua] = _classify_agent(ua)
        self._spent += time.perf_counter() - started
        if len(cache) > self._size:
            cache.popitem(last=False)
        return cls
