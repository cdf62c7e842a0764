"""The book: one YAML or JSON file that describes an MSP; import (all or nothing), export, schema."""
