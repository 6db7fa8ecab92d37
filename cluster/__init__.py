"""How to get a Ray cluster for a search.

- ``local.py``: a head and N worker nodes on one machine, each its own ``ray start`` (tests, laptops).
- ``aws.yaml``: a Ray cluster-launcher config (``ray up``): CPU head, GPU workers, shared EFS.
- ``kuberay/``: a RayCluster and a RayJob for the KubeRay operator, and the image they run.

The driver joins any of them with ``--address`` / ``RAY_ADDRESS``
(:func:`stiltsearch.search.driver.ray_session`).
"""
