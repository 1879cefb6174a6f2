"""Jobs: notebooks run headless under an access request (papermill), outliving the server."""
