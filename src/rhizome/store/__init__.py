"""The typed cluster store: key layout, documents, codec and ClusterStore.

Import from the submodules (`rhizome.store.cluster_store`, `.documents`,
`.view`, `.keys`): the spec package builds on `rhizome.store.codec`, so this
package must not import the spec at import time.
"""
