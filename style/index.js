import './base.css';
import './transforms.css';
