"""Real alert packets in: ZTF's and Rubin's alerts read and written to a stamp store.

The readers are :mod:`bayesrb.alerts.ztf` and :mod:`bayesrb.alerts.rubin` (Avro), and :mod:`bayesrb.alerts.exports`
for brokers' Parquet and JSON exports of ZTF's.

Reading decodes only what an alert needs: :mod:`bayesrb.alerts.projection` has fastavro decode only the Avro fields
needed, :mod:`bayesrb.alerts.fitsimage` reads plain cutout images directly (astropy otherwise);
:mod:`bayesrb.alerts.packets` holds what the surveys' readers share; :mod:`bayesrb.alerts.store` writes the store
block by block.

The store written by :func:`bayesrb.alerts.ingest.ingest_alerts` has the layout of a simulated visit's stamp shard
(:mod:`bayesrb.stamps.shard`), so everything that reads a shard reads it. This package never imports the simulator.
"""
