// placeholder: the JavaScript client lands with its issue
