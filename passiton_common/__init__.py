"""What both services share: typed settings from the environment and the JSON logging set-up.

Imports neither service.
"""
