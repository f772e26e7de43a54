"""The store side of the command line: ``clipviz embed FOLDER --store OUT`` and ``clipviz index``.

Registered from :mod:`clipviz.cli` with ``add_store_options`` (on the embed parser) and
``add_index_parser``; ``run_store_embed`` runs when ``--store`` is given.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

_EPILOG_INDEX = """examples:
  clipviz index ./store                  # build the search index of a store
  clipviz index ./store --cells 4096 --nprobe 64
"""


def add_store_options(embed: argparse.ArgumentParser) -> None:
    """Options of ``clipviz embed`` that write a store instead of filling the cache."""
    g = embed.add_argument_group("store (write an open Parquet store; resumable)")
    g.add_argument("--store", metavar="OUT", help="write the vectors to this store folder")
    g.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process (default); ray: a Ray cluster")
    g.add_argument("--ray-address", help="join this Ray cluster (default: $RAY_ADDRESS, else "
                   "start a local Ray)")
    g.add_argument("--precision", choices=["fp32", "fp16", "bf16"], default="fp32",
                   help="model precision (fp16 on GPUs only; default: %(default)s)")
    g.add_argument("--vector-dtype", choices=["float16", "float32"], default="float16",
                   help="how vectors are stored (default: %(default)s)")
    g.add_argument("--shard-size", type=int, default=4096,
                   help="rows per shard, the unit of resumption (default: %(default)s)")
    g.add_argument("--actors", type=int, help="ray: model actors (default: one per GPU, or "
                   "what the CPUs allow)")
    g.add_argument("--threads", type=int, help="ray: torch threads per CPU actor")
    g.add_argument("--stall-timeout", type=float, default=600.0, metavar="S",
                   help="ray: fail (keeping the written shards) when no batch arrives for S "
                   "seconds, e.g. after a node was lost (default: %(default)s)")


def add_index_parser(sub: Any, formatter: Any) -> None:
    """``clipviz index OUT``: build the approximate nearest-neighbour index of a store."""
    p = sub.add_parser(
        "index",
        help="build the search index of an embedding store",
        description="Build a faiss IVF index over the vectors of a store written by "
        "'clipviz embed --store'; clipviz.search and the Workbench use it for large stores.",
        epilog=_EPILOG_INDEX,
        formatter_class=formatter,
    )
    p.add_argument("store", help="store folder")
    p.add_argument("--cells", type=int, help="inverted lists (default: about sqrt(N))")
    p.add_argument("--nprobe", type=int, help="lists scanned per query (default: cells/64, at least 8)")
    p.set_defaults(run=run_index)


def run_store_embed(args: argparse.Namespace) -> int:
    """``clipviz embed FOLDER --store OUT``: embed into a store (finishing a partial one)."""
    from clipviz.cli import UsageError

    if args.folder is None or args.sample is not None:
        raise UsageError("--store needs a FOLDER of images (not --sample)")
    if args.shard_size < 1:
        raise UsageError(f"--shard-size must be at least 1, got {args.shard_size}")
    from clipviz.engine.ray_job import RayJobStalled, RayOptions
    from clipviz.engine.store_job import embed_to_store
    from clipviz.engine.store_rows import ModelSpec

    device = "cpu" if args.device == "auto" and args.engine == "ray" else args.device
    spec = ModelSpec(args.model, args.pretrained, device, args.precision)
    if args.stall_timeout <= 0:
        raise UsageError(f"--stall-timeout must be a positive number of seconds, got "
                         f"{args.stall_timeout:g}")
    opts = RayOptions(address=args.ray_address, actors=args.actors, threads=args.threads,
                      stall_timeout=args.stall_timeout)
    print(f"embedding {args.folder!r} into the store {args.store!r} ({args.engine} engine)",
          flush=True)
    try:
        result = embed_to_store(
            args.folder, args.store, spec, engine=args.engine, batch_size=args.batch_size,
            shard_size=args.shard_size, vector_dtype=args.vector_dtype,
            progress=not args.no_progress, ray_options=opts,
        )
    except ImportError as err:  # the distributed extra is missing
        raise UsageError(str(err)) from None
    except (FileNotFoundError, NotADirectoryError, ValueError) as err:
        raise UsageError(str(err)) from None
    except RayJobStalled as err:  # not the user's mistake: one line, exit 1
        print(f"clipviz embed: error: {err}", file=sys.stderr)
        return 1
    print(f"shards embedded now: {result.embedded_shards}, kept from before: {result.kept_shards}")
    print(f"vectors in the store: {result.count}")
    print(f"skipped: {result.skipped} (see {result.store}/skipped/)")
    return 0


def run_index(args: argparse.Namespace) -> int:
    """``clipviz index OUT``: train and write ``OUT/index/ivf.faiss``."""
    import time

    from clipviz.cli import UsageError

    try:
        from clipviz.compute.ann import AnnIndex
        from clipviz.engine.store import open_store

        emb = open_store(args.store)
        t0 = time.perf_counter()
        index = AnnIndex.build(emb.vectors, cells=args.cells, nprobe=args.nprobe,
                               fingerprint=_fingerprint(emb))
    except ImportError as err:
        raise UsageError(str(err)) from None
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    folder = index.save(emb.store / "index")
    print(f"indexed {index.count} vectors in {time.perf_counter() - t0:.1f} s: {folder}",
          file=sys.stdout)
    return 0


def _fingerprint(emb: Any) -> str:
    from clipviz.engine.store_format import Manifest

    manifest = emb.store / "manifest.json"
    return Manifest.read(manifest).fingerprint if manifest.is_file() else ""
