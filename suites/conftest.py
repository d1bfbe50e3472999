"""The conformance suites' pytest plumbing: everything lives in ``harness.certify_plugin``.

Options ``--sut``, ``--seed``, ``--profile``, ``--results-dir``; fixtures
``sut_name``, ``seed``, ``profile``, ``history``, ``hardware``, ``certify_run``,
``verdict``; ``harness.certify_plugin.require(verdict)``; the marker
``@pytest.mark.requirement("id", title=...)``. See docs/report.md.
"""

pytest_plugins = ["harness.certify_plugin"]
