"""The conformance suites' pytest plumbing: everything lives in ``harness.cli.certify_plugin``.

Options ``--sut``, ``--seed``, ``--profile``, ``--results-dir``; fixtures
``sut_name``, ``seed``, ``profile``, ``history``, ``hardware``, ``certify_run``,
``verdict``; ``harness.cli.certify_plugin.require(verdict)``; the marker
``@pytest.mark.requirement("id", title=...)``. See docs/report.md.
"""

pytest_plugins = ["harness.cli.certify_plugin"]
