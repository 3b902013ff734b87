"""What the dashboard's refresh keys do to the feed (r, p, + and -), and what the screen says back."""

from __future__ import annotations

from services.feed import AccountFeed


def refresh(feed: AccountFeed | None) -> str | None:
    """Fetch now (and after rejected credentials, try again); returns what to say."""
    if feed is None:
        return None
    feed.refresh_now()
    return "Refreshing…"


def pause_or_resume(feed: AccountFeed | None) -> None:
    if feed is None:
        return
    if feed.paused:
        feed.resume()
    else:
        feed.pause()


def scale_interval(feed: AccountFeed | None, factor: float) -> str | None:
    """Refresh faster or slower; returns the interval now in force, as the status line shows it."""
    if feed is None:
        return None
    interval = feed.set_interval(feed.interval * factor)
    effective = feed.effective_interval()
    # The same figure the status line shows: with the stream live, polls are a slow reconcile.
    message = f"Refreshing every {effective:g} s"
    if effective != interval:
        message += f" (every {interval:g} s whenever the push stream is not live)"
    return message
