# SPDX-License-Identifier: LGPL-2.1-or-later
"""Timeouts seen from Python: agent properties set at construction and
per-request overrides; each fails the request with its own error code."""

import time

from dispatchtest import Dispatch, DispatchTestCase, main


class AgentTimeoutTests(DispatchTestCase):

    agent_props = {'headers_timeout': 200, 'body_timeout': 200}

    def test_agent_properties(self):
        self.assertEqual(self.agent.props.headers_timeout, 200)
        self.assertEqual(self.agent.get_headers_timeout(), 200)
        self.assertEqual(self.agent.props.body_timeout, 200)
        self.assertEqual(self.agent.props.connections, 16)
        self.assertEqual(self.agent.props.max_response_size, -1)
        self.assertFalse(self.agent.props.allow_h2)
        self.assertFalse(self.agent.props.closed)
        self.assertFalse(self.agent.props.destroyed)

    def test_headers_timeout(self):
        started = time.monotonic()
        rec, ctl = self.fetch('/hang')
        elapsed = time.monotonic() - started
        self.assertEqual(rec.events, ['request_start', 'response_error'])
        self.assert_dispatch_error(rec.error, Dispatch.Error.HEADERS_TIMEOUT)
        self.assertGreaterEqual(elapsed, 0.15)
        self.assertLess(elapsed, 5)
        self.assertFalse(ctl.get_aborted())
        self.assertTrue(ctl.get_cancellable().is_cancelled())

    def test_body_timeout(self):
        rec, _ = self.fetch('/stall')
        self.assertEqual(rec.status, 200)
        self.assertEqual(bytes(rec.body), b'hello')
        self.assert_dispatch_error(rec.error, Dispatch.Error.BODY_TIMEOUT)

    def test_request_override_disables(self):
        """headers-timeout 0 on the request disables the agent's 200 ms."""
        req = self.request('/slow?ms=400')
        req.props.headers_timeout = 0
        self.assertEqual(req.get_headers_timeout(), 0)
        rec, _ = self.fetch(request=req)
        self.assertEqual(rec.events[-1], 'response_end', rec.error)
        self.assertEqual(bytes(rec.body), b'slow')


class RequestTimeoutTests(DispatchTestCase):

    def test_request_headers_timeout(self):
        req = self.request('/hang')
        self.assertEqual(req.get_headers_timeout(), -1)
        req.set_headers_timeout(150)
        rec, _ = self.fetch(request=req)
        self.assert_dispatch_error(rec.error, Dispatch.Error.HEADERS_TIMEOUT)

    def test_request_timeout(self):
        req = self.request('/stall')
        req.props.timeout = 200
        rec, _ = self.fetch(request=req)
        self.assertEqual(rec.status, 200)
        self.assert_dispatch_error(rec.error, Dispatch.Error.TIMEOUT)

    def test_whole_timeout_counts_pauses(self):
        req = self.request('/big')
        req.props.timeout = 200
        rec, ctl = self.fetch(request=req, response_start=lambda r, c, *a: c.pause())
        self.assert_dispatch_error(rec.error, Dispatch.Error.TIMEOUT)
        self.assertEqual(rec.events, ['request_start', 'response_start', 'response_error'])


if __name__ == '__main__':
    main()
