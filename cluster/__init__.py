"""How to get a Ray cluster: local multi-node scripts, cluster-launcher YAMLs, KubeRay manifests.

Today the driver starts a local Ray instance, or joins an existing cluster with ``--address`` /
``RAY_ADDRESS`` (:func:`stiltsearch.search.driver.ray_session`). The cluster tooling is issue 6.
"""
