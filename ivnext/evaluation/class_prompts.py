"""Class names read from the usual class-name files, and the text prompts of zero-shot classification."""
import json
import re
from typing import List, Sequence

# The single prompt of the default zero-shot protocol; pass more templates to average their embeddings.
DEFAULT_TEMPLATES = ('a video of {}.', )


def readable_class_name(name: str) -> str:
    """A class label as words: ``'ApplyEyeMakeup'`` -> ``'apply eye makeup'``, ``'riding_a_bike'`` -> ``'riding a
    bike'``, SSv2's ``'Putting [something] into [something]'`` -> ``'putting something into something'``."""
    name = re.sub(r'[\[\]]', '', name.strip())
    name = name.replace('_', ' ')
    name = re.sub(r'(?<=[a-z0-9])(?=[A-Z])', ' ', name)  # CamelCase (UCF101) to words
    return re.sub(r'\s+', ' ', name).strip().lower()


def read_class_names(path: str) -> List[str]:
    """Class names, in label order, from a class-name file.

    Accepted formats: one name per line (mmaction2's ``label_map_k400.txt``, SSv2 ``label_map``), ``index name``
    lines (UCF101's ``classInd.txt``: 1-based indices), a JSON list, or a JSON object ``{name: index}`` (SSv2's
    ``labels.json``). Names are made readable with :func:`readable_class_name`.

    Args:
        path: The file.

    Returns:
        list: C readable names; entry ``i`` is label ``i``.
    """
    with open(path, encoding='utf-8') as f:
        text = f.read()
    if text.lstrip().startswith(('[', '{')):
        data = json.loads(text)
        if isinstance(data, dict):
            order = sorted(data.items(), key=lambda kv: int(kv[1]))
            indices = [int(v) for _, v in order]
            if indices != list(range(len(indices))):
                raise ValueError(f'{path}: class indices must be 0..{len(indices) - 1}, got {indices[:10]}...')
            names = [k for k, _ in order]
        else:
            names = [str(n) for n in data]
    else:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        indexed = [re.match(r'^(\d+)[\s,]+(.+)$', line) for line in lines]
        if lines and all(indexed):
            pairs = sorted((int(m.group(1)), m.group(2)) for m in indexed)
            first = pairs[0][0]
            if [i for i, _ in pairs] != list(range(first, first + len(pairs))):
                raise ValueError(f'{path}: "index name" lines must number the classes consecutively')
            names = [n for _, n in pairs]
        else:
            names = lines
    if not names:
        raise ValueError(f'{path} lists no class names')
    return [readable_class_name(n) for n in names]


def class_prompts(names: Sequence[str], templates: Sequence[str] = DEFAULT_TEMPLATES) -> List[List[str]]:
    """Prompts of each class: ``[[template.format(name) for template in templates] for name in names]``."""
    if isinstance(templates, str):
        templates = [templates]
    for template in templates:
        if template.count('{}') != 1:
            raise ValueError(f'a prompt template needs exactly one "{{}}" for the class name, got {template!r}')
    return [[t.format(n) for t in templates] for n in names]
