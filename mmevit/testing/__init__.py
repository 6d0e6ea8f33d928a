from .official_reference import OfficialEfficientViT, official_state_dict

__all__ = ['OfficialEfficientViT', 'official_state_dict']
