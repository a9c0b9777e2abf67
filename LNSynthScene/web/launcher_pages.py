"""The launcher's own small pages: the start page (the user's sessions, a button for a new one) and the
page of an ended session (why it ended, a button to reopen it on its folder).

Starting or reopening a session changes the server (a 0.7 GB process), so it is a POST from these
pages' forms, never a GET that another site could make the browser send; the launcher also refuses
a POST whose `Sec-Fetch-Site` or `Origin` says another site's page made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

NEW_SESSION_BUTTON = "new-session"   # element ids: the browser tests and scripts press them
REOPEN_BUTTON = "reopen-session"
STYLE = ("body{font:15px sans-serif;background:#1e1e1e;color:#eee;max-width:720px;margin:40px auto}"
         "a{color:#8cf}button{font-size:15px;padding:6px 14px;margin:4px 0}li{margin:6px 0}"
         ".ended{color:#fc8}")


@dataclass(frozen=True)
class Listed:
    """One of the user's sessions as the pages show it."""

    address: str           # /s/<id>/index.html
    reopen: str            # /s/<id>/reopen (POST)
    ended: str = ""        # how it ended ("" while it runs)
    folder: str = ""       # its folder's name on the server


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h2>{escape(title)}</h2>{body}</body></html>")


def _reopen_form(session: Listed, label: str) -> str:
    return (f"<form method='post' action='{escape(session.reopen)}' style='display:inline'>"
            f"<button type='submit' id='{REOPEN_BUTTON}'>{escape(label)}</button></form>")


def _rows(sessions: Sequence[Listed]) -> str:
    rows = []
    for s in sessions:
        if s.ended:
            rows.append(f"<li class='ended'>{escape(s.folder)}: ended ({escape(s.ended)}); its files are kept. "
                        f"{_reopen_form(s, 'Reopen it')}</li>")
        else:
            rows.append(f"<li><a href='{escape(s.address)}'>{escape(s.address)}</a> (open)</li>")
    return "<ul>" + "".join(rows) + "</ul>" if rows else ""


def start_page(sessions: Sequence[Listed]) -> str:
    """`/`: the user's sessions (open ones to go back to, ended ones to reopen) and a new-session button."""
    mine = _rows(sessions)
    listed = f"<p>Your sessions:</p>{mine}" if mine else "<p>You have no session on this server yet.</p>"
    return _page("LNSynth", f"{listed}<form method='post' action='/'><button type='submit' "
                            f"id='{NEW_SESSION_BUTTON}'>Start a new session</button></form>"
                            "<p>Each session is a scene and a work folder of its own on the server.</p>")


def ended_page(session: Listed) -> str:
    """An ended session's address: why it ended, its kept folder, and a button to reopen it there."""
    return _page("This LNSynth session has ended",
                 f"<p>It ended: {escape(session.ended)}. Its files are kept in its folder on the server "
                 f"({escape(session.folder)}): runs, training cases, checkpoints, datasets and uploads.</p>"
                 f"<p>{_reopen_form(session, 'Reopen this session')} on the same folder (its CT, anatomy and "
                 "painted nodes come back), or <a href='/'>start a new session</a>.</p>")
