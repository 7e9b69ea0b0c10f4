"""The encode stage: run each requested modality's encoder plugin, fitted on training rows only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from biocount.errors import BiocountError, BiocountInputError, ContractError, PluginError
from biocount.host.contract import ModalityData
from biocount.study.split import TrainSelection  # the split stage decides which rows train; encoders obey

if TYPE_CHECKING:
    from anndata import AnnData

    from biocount.host.plugins import Host


def encode(data: dict[str, AnnData], modalities: list[str], host: Host, *,
           train: TrainSelection | None = None, options: dict[str, dict[str, Any]] | None = None,
           overrides: dict[str, str] | None = None) -> tuple[dict[str, ModalityData], dict[str, Any]]:
    """Encode ``modalities`` of ``data``; returns the encoded modalities and the fitted encoders.

    ``overrides`` maps a modality to an encoder ('name' or 'distribution:name'), over the registry.

    An encoder returning several modalities (rna's cells per type) names the extra ones
    ``f"{modality}_{meta.modality}"``.
    """
    train = train or TrainSelection()
    encoded: dict[str, ModalityData] = {}
    encoders: dict[str, Any] = {}
    for name in modalities:
        if name not in data:
            raise BiocountInputError(f"modality '{name}' is not in the data; available: {', '.join(data)}")
        component = host.encoder(name) if name not in (overrides or {}) else \
            host.component("encoder", overrides[name])
        encoder = component.build(**(options or {}).get(name, {}))
        adata = data[name]
        try:
            encoder.fit(adata, train=train.mask(adata.obs))
            out = encoder.transform(adata)
        except ContractError as exc:
            raise ContractError(exc.problems, where=f"modality '{name}' ({component.ref})") from exc
        except BiocountError as exc:
            raise type(exc)(f"modality '{name}' ({component.ref}): {exc}") from exc
        except Exception as exc:
            raise PluginError(f"{component.plugin.label} encoder '{component.spec.name}' failed on modality "
                              f"'{name}': {type(exc).__name__}: {exc}") from exc
        parts = out if isinstance(out, list) else [out]
        if not parts or not all(isinstance(p, ModalityData) for p in parts):
            raise PluginError(f"{component.plugin.label} encoder '{component.spec.name}' did not return "
                              "ModalityData")
        for i, part in enumerate(parts):
            key = name if i == 0 else f"{name}_{part.meta.modality}"
            meta = part.meta.model_copy(update={"modality": key, "encoder": component.ref})
            encoded[key] = part.model_copy(update={"meta": meta})
        encoders[name] = encoder
    return encoded, encoders
