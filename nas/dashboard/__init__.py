"""The Streamlit results dashboard (`nas dashboard`); it reads the store and writes nothing."""
