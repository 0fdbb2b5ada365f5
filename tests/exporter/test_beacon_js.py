"""exporter/static/beacon.js, run in Node with a fake window, document and navigator."""

from __future__ import annotations

import json
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest

from exporter.app import PUBLIC, create_app
from exporter.config import ExporterConfig
from tests.exporter.beacon_page import (
    ATTRS,
    BEACON,
    ENDPOINT,
    HARNESS,
    KEY,
    KEYED_SCRIPT,
    PAGE,
    ROOT,
    SCRIPT,
    events,
    run_page,
    widget_event,
)
from tests.exporter.support import BEACON_SECRET


def test_is_small_es5(node: str) -> None:
    done = subprocess.run(
        [node, "--expose-internals", str(HARNESS), "--es5"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"ok": True, "bytes": BEACON.stat().st_size}
    assert BEACON.stat().st_size < 6 * 1024


def test_reports_load_time_from_navigation_timing_after_the_load_event(node: str) -> None:
    result = run_page(
        node,
        "fire('load'); tick();",
        performance={"navigation": {"loadEventStart": 1234.6}},
    )
    assert result["sent"][0]["via"] == "sendBeacon"
    assert result["sent"][0]["url"] == ENDPOINT
    assert result["sent"][0]["bodyType"] == "string"  # sendBeacon sends it as text/plain
    assert events(result) == [widget_event("widget.loaded", duration_ms=1235)]
    assert result["global"] == "object"


@pytest.mark.parametrize(
    ("performance", "expected"),
    [
        ({"timing": {"navigationStart": 1000, "loadEventStart": 1450}}, 450),
        ({"now": 321.2}, 321),
    ],
)
def test_load_time_falls_back_to_older_apis_when_the_page_is_already_loaded(
    node: str, performance: dict[str, Any], expected: int
) -> None:
    result = run_page(node, "tick();", readyState="complete", performance=performance)
    assert events(result) == [widget_event("widget.loaded", duration_ms=expected)]


def test_loaded_hook_reports_once_with_the_widgets_own_duration(node: str) -> None:
    script = {"src": SCRIPT["src"], "attrs": {**ATTRS, "data-auto-load": "false"}}
    result = run_page(
        node,
        "PassItOnBeacon.loaded(812.4); PassItOnBeacon.loaded(900); fire('load'); tick();",
        script=script,
        performance={"now": 5000},
    )
    assert events(result) == [widget_event("widget.loaded", duration_ms=812)]


def test_no_performance_api_means_no_load_report(node: str) -> None:
    result = run_page(node, "fire('load'); tick();", performance=None)
    assert result["sent"] == []


def test_configured_by_init_when_there_is_no_script_tag(node: str) -> None:
    result = run_page(
        node,
        """
        PassItOnBeacon.loadError(new Error('boom'));  // before init: kept until configured
        PassItOnBeacon.init({endpoint: 'https://mon.example/', organizationId: 'org-2',
                             widgetId: 'w-2', autoLoad: false});
        tick();
        """,
        script=None,
    )
    assert result["sent"][0]["url"] == "https://mon.example/v1/beacon"
    assert events(result) == [
        {
            "type": "widget.load_error",
            "organization_id": "org-2",
            "widget_id": "w-2",
            "url": PAGE,
            "error": "Error: boom",
            "source": "hook",
        }
    ]


def test_data_endpoint_overrides_the_script_origin(node: str) -> None:
    script = {"src": "/static/beacon.js", "attrs": {**ATTRS, "data-endpoint": "https://m.example"}}
    result = run_page(node, "PassItOnBeacon.renderError('x'); tick();", script=script)
    assert result["sent"][0]["url"] == "https://m.example/v1/beacon"


def test_the_widget_key_goes_in_the_query(node: str) -> None:
    script = {"src": SCRIPT["src"], "attrs": {**ATTRS, "data-key": "k1.abc/+="}}
    result = run_page(node, "PassItOnBeacon.renderError('x'); tick();", script=script)
    assert result["sent"][0]["url"] == ENDPOINT + "?key=k1.abc%2F%2B%3D"
    script = {"src": SCRIPT["src"], "attrs": {**ATTRS, "data-beacon-key": "pk_x"}}
    result = run_page(node, "PassItOnBeacon.renderError('x'); tick();", script=script)
    assert result["sent"][0]["url"] == ENDPOINT + "?key=pk_x"
    result = run_page(
        node,
        """
        PassItOnBeacon.init({endpoint: 'https://m.example', organizationId: 'o', widgetId: 'w',
                             key: 'k2', autoLoad: false});
        PassItOnBeacon.renderError('x'); tick();
        """,
        script=None,
        sendBeacon="refuse",
    )
    assert [(r["via"], r["url"]) for r in result["sent"]] == [
        ("fetch", "https://m.example/v1/beacon?key=k2")
    ]


def test_the_committed_file_is_the_build_of_the_typescript_source(node: str) -> None:
    built = ROOT / "clients" / "typescript" / "node_modules" / "esbuild"
    assert built.exists(), "`make test` installs the TypeScript client's dev dependencies"
    done = subprocess.run(
        [node, str(ROOT / "clients" / "typescript" / "scripts" / "build-beacon.mjs"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_without_configuration_nothing_is_sent(node: str) -> None:
    script = {"src": "/static/beacon.js", "attrs": ATTRS}  # no endpoint can be derived
    result = run_page(node, "PassItOnBeacon.renderError('x'); fire('load'); tick();", script=script)
    assert result["sent"] == []


def test_failed_resource_loads_and_the_load_error_hook(node: str) -> None:
    result = run_page(
        node,
        """
        fire('error', {target: {tagName: 'SCRIPT', src: 'https://cdn.example/widget.js?v=3'}});
        fire('error', {target: {tagName: 'LINK', href: 'https://cdn.example/widget.css'}});
        PassItOnBeacon.loadError('timeout', 'iframe');
        tick();
        """,
    )
    assert events(result) == [
        widget_event(
            "widget.load_error",
            error="script failed to load",
            source="https://cdn.example/widget.js",
        ),
        widget_event(
            "widget.load_error",
            error="link failed to load",
            source="https://cdn.example/widget.css",
        ),
        widget_event("widget.load_error", error="timeout", source="iframe"),
    ]
    assert ["error", True] in result[
        "windowListeners"
    ]  # capture phase: resource errors don't bubble


def test_render_errors(node: str) -> None:
    result = run_page(
        node,
        "PassItOnBeacon.renderError(new TypeError('amount is undefined')); tick();",
    )
    assert events(result) == [
        widget_event("widget.render_error", error="TypeError: amount is undefined", source="hook")
    ]


def test_uncaught_errors_and_unhandled_rejections(node: str) -> None:
    result = run_page(
        node,
        """
        fire('error', {message: 'Uncaught ReferenceError: foo is not defined',
                       filename: 'https://example.org/widget.js?t=1', lineno: 12, colno: 4,
                       error: new ReferenceError('foo is not defined')});
        fire('error', {message: 'Script error.', filename: '', lineno: 0});
        fire('unhandledrejection', {reason: new Error('payment intent failed')});
        fire('unhandledrejection', {reason: 'plain string'});
        fire('unhandledrejection', {reason: undefined});
        tick();
        """,
    )
    assert events(result) == [
        widget_event(
            "widget.script_error",
            error="ReferenceError: foo is not defined",
            source="https://example.org/widget.js:12",
        ),
        widget_event("widget.script_error", error="Script error."),
        widget_event(
            "widget.script_error", error="Error: payment intent failed", source="unhandledrejection"
        ),
        widget_event("widget.script_error", error="plain string", source="unhandledrejection"),
        widget_event("widget.script_error", error="unknown", source="unhandledrejection"),
    ]


HOST_PAGE_STEPS = """
    fire('error', {target: {tagName: 'SCRIPT', src: 'https://cdn.example/widget/app.js?v=3'}});
    fire('error', {target: {tagName: 'IMG', src: 'https://example.org/logo.png'}});
    fire('error', {message: 'a', filename: 'https://cdn.example/widget/app.js', lineno: 7,
                   error: new ReferenceError('a')});
    fire('error', {message: 'b', filename: 'https://example.org/app.js', lineno: 3,
                   error: {name: 'TypeError', message: 'b',
                           stack: 'TypeError: b\\n    at pay (https://example.org/w/pay.js:2:9)'}});
    fire('error', {message: 'host', filename: 'https://example.org/app.js', lineno: 1,
                   error: new Error('host')});
    fire('error', {message: 'Script error.', filename: '', lineno: 0});
    fire('unhandledrejection', {reason: {name: 'Error', message: 'widget promise',
        stack: 'Error: widget promise\\n    at https://cdn.example/widget/app.js:9:1'}});
    fire('unhandledrejection', {reason: new Error('host promise')});
    fire('unhandledrejection', {reason: 'plain string'});
    PassItOnBeacon.renderError('hook');
    tick();
"""


def test_on_the_host_page_only_the_widgets_own_errors_are_reported(node: str) -> None:
    """Issue 18: the host page's errors (its scripts, its images, its rejections) are not the
    widget's; only those whose file, stack or resource URL is under data-widget-src are."""
    attrs = {**ATTRS, "data-widget-src": "https://cdn.example/widget/, /w/"}
    script = {"src": SCRIPT["src"], "attrs": attrs}
    result = run_page(node, HOST_PAGE_STEPS, script=script, topLevel=True)
    assert [(e["type"], e["error"], e.get("source")) for e in events(result)] == [
        ("widget.load_error", "script failed to load", "https://cdn.example/widget/app.js"),
        ("widget.script_error", "ReferenceError: a", "https://cdn.example/widget/app.js:7"),
        ("widget.script_error", "TypeError: b", "https://example.org/app.js:3"),
        ("widget.script_error", "Error: widget promise", "unhandledrejection"),
        ("widget.render_error", "hook", "hook"),
    ]


def test_on_the_host_page_without_widget_src_only_the_hooks_are_reported(node: str) -> None:
    result = run_page(node, HOST_PAGE_STEPS, topLevel=True)
    assert [(e["type"], e["error"]) for e in events(result)] == [("widget.render_error", "hook")]


def test_in_the_widgets_frame_every_error_is_the_widgets_unless_told(node: str) -> None:
    in_frame = run_page(node, HOST_PAGE_STEPS)  # the harness's window is a frame by default
    assert len(events(in_frame)) == 10
    told = {"src": SCRIPT["src"], "attrs": {**ATTRS, "data-widget-frame": "false"}}
    assert [e["error"] for e in events(run_page(node, HOST_PAGE_STEPS, script=told))] == ["hook"]


def test_errors_are_batched_briefly(node: str) -> None:
    result = run_page(
        node,
        """
        PassItOnBeacon.renderError('a'); PassItOnBeacon.renderError('b');
        fire('error', {message: 'c'});
        tick();
        PassItOnBeacon.renderError('d');
        tick();
        """,
    )
    assert [[e["error"] for e in request["body"]] for request in result["sent"]] == [
        ["a", "b", "c"],
        ["d"],
    ]
    assert result["delays"] == [1000, 1000]
    assert result["pendingTimers"] == 0


def test_leaving_the_page_sends_at_once(node: str) -> None:
    result = run_page(
        node,
        """
        PassItOnBeacon.renderError('before hide');
        document.visibilityState = 'hidden'; fireDocument('visibilitychange');
        PassItOnBeacon.renderError('before pagehide');
        fire('pagehide');
        """,
    )
    assert [[e["error"] for e in request["body"]] for request in result["sent"]] == [
        ["before hide"],
        ["before pagehide"],
    ]
    assert result["pendingTimers"] == 0


def test_error_strings_and_urls_are_truncated_and_stripped(node: str) -> None:
    result = run_page(
        node,
        """
        PassItOnBeacon.renderError('x'.repeat(5000));
        fire('error', {message: 'y', filename: 'https://e.org/' + 'p'.repeat(2000) + '?q=1'});
        tick();
        """,
    )
    render, script = events(result)
    assert render["error"] == "x" * 200
    assert render["url"] == PAGE  # the page's query and fragment (donor e-mail) never leave
    assert script["source"] == ("https://e.org/" + "p" * 2000)[:500] + ":0"


def test_reports_per_page_are_capped_and_repeats_collapsed(node: str) -> None:
    result = run_page(
        node,
        """
        for (var i = 0; i < 5; i++) PassItOnBeacon.renderError('same');
        for (var j = 0; j < 50; j++) fire('error', {message: 'distinct ' + j});
        tick();
        """,
    )
    sent = events(result)
    assert len(sent) == 20
    assert [e["error"] for e in sent] == ["same"] + [f"distinct {j}" for j in range(19)]


def test_cap_and_delay_are_configurable(node: str) -> None:
    result = run_page(
        node,
        """
        PassItOnBeacon.init({endpoint: 'https://m.example', organizationId: 'o', widgetId: 'w',
                             maxReports: 2, flushDelay: 50, autoLoad: false});
        for (var j = 0; j < 5; j++) PassItOnBeacon.renderError('e' + j);
        tick();
        """,
        script=None,
    )
    assert [e["error"] for e in events(result)] == ["e0", "e1"]
    assert result["delays"] == [50]


@pytest.mark.parametrize("send_beacon", ["refuse", "throw", "missing"])
def test_falls_back_to_fetch_with_keepalive(node: str, send_beacon: str) -> None:
    result = run_page(node, "PassItOnBeacon.renderError('x'); tick();", sendBeacon=send_beacon)
    (request,) = result["sent"]
    assert request["via"] == "fetch"
    assert request["url"] == ENDPOINT
    assert request["method"] == "POST"
    assert request["keepalive"] is True
    assert request["credentials"] == "omit"
    assert request["headers"] == {"Content-Type": "text/plain"}  # no CORS preflight
    assert request["bodyType"] == "string"
    assert [e["error"] for e in request["body"]] == ["x"]


def test_never_throws_into_the_page(node: str) -> None:
    result = run_page(
        node,
        """
        var evil = {}; Object.defineProperty(evil, 'message', {get: function () { throw 1; }});
        PassItOnBeacon.renderError(evil);
        PassItOnBeacon.renderError(null);
        PassItOnBeacon.loadError();
        PassItOnBeacon.loaded('soon'); PassItOnBeacon.loaded(-5); PassItOnBeacon.loaded(Infinity);
        PassItOnBeacon.init(); PassItOnBeacon.init(null); PassItOnBeacon.init({endpoint: 5});
        fire('error', {target: null}); fire('error', {target: {tagName: 'IMG'}});
        fire('unhandledrejection', {});
        window.fire('error', {message: {toString: function () { throw new Error('no'); }}});
        PassItOnBeacon.flush(); fire('pagehide'); tick();
        """,
        sendBeacon="throw",
        fetch="reject",
        performance=None,
    )
    # the evil message getter and the throwing toString lose their report, nothing else
    assert [(e["type"], e["error"], e.get("source")) for e in events(result)] == [
        ("widget.render_error", "unknown", "hook"),
        ("widget.load_error", "unknown", "hook"),
        ("widget.script_error", "unknown", None),
        ("widget.load_error", "img failed to load", None),
        ("widget.script_error", "unknown", "unhandledrejection"),
    ]
    assert [request["via"] for request in result["sent"]] == ["fetch"]


def test_without_sendbeacon_or_fetch_it_stays_quiet(node: str) -> None:
    result = run_page(
        node, "PassItOnBeacon.renderError('x'); tick();", sendBeacon="missing", fetch="missing"
    )
    assert result["sent"] == []


def test_loading_the_snippet_twice_installs_it_once(node: str) -> None:
    result = run_page(node, "PassItOnBeacon.renderError('x'); tick();", loadTwice=True)
    assert len(events(result)) == 1
    assert [t for t, _ in result["windowListeners"]].count("error") == 1


async def test_the_exporter_serves_the_snippet_and_accepts_what_it_sends(
    node: str, aiohttp_client: Any
) -> None:
    result = run_page(
        node,
        """
        fire('load');
        fire('error', {target: {tagName: 'SCRIPT', src: 'https://cdn.example/widget.js'}});
        PassItOnBeacon.renderError(new TypeError('x'.repeat(5000)));
        fire('error', {message: 'boom', filename: 'https://example.org/w.js', lineno: 1});
        fire('unhandledrejection', {reason: new Error('nope')});
        tick();
        """,
        performance={"navigation": {"loadEventStart": 2500}},
        script=KEYED_SCRIPT,
    )
    config = ExporterConfig.from_env(
        {
            "EXPORTER_CORS_ORIGINS": "https://example.org",
            "EXPORTER_BEACON_SECRET": BEACON_SECRET,
            "EXPORTER_INGEST_TOKEN": "token-of-the-beacon-test",
        }
    )
    client = await aiohttp_client(create_app(config)[PUBLIC])

    served = await client.get("/v1/beacon.js")
    assert served.status == 200
    assert served.content_type == "application/javascript"
    assert await served.read() == BEACON.read_bytes()

    sent_types = []
    for request in result["sent"]:
        body = json.dumps(request["body"])
        url = urlsplit(request["url"])
        assert url.query == f"key={KEY}"
        response = await client.post(
            f"{url.path}?{url.query}",
            data=body,
            headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://example.org"},
        )
        assert response.status == 202, await response.text()
        assert await response.json() == {
            "accepted": len(request["body"]),
            "rejected": 0,
            "errors": [],
        }
        assert response.headers["Access-Control-Allow-Origin"] == "https://example.org"
        sent_types += [event["type"] for event in request["body"]]
    assert sent_types == [
        "widget.load_error",
        "widget.render_error",
        "widget.script_error",
        "widget.script_error",
        "widget.loaded",  # measured in a timer after the load event, so it queues last
    ]
